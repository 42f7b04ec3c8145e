import _CryptoExtras
import Crypto
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A key file in `keys/<id>`: the repository's key material sealed under a key derived from a passphrase with
/// scrypt. Several key files (passphrases) can open one repository.
public struct KeyFile: Codable, Sendable {
    public var id: String
    public var kdf: String
    /// scrypt parameters: N (rounds), r (block size), p (parallelism).
    public var n: Int
    public var r: Int
    public var p: Int
    public var salt: Data
    /// ChaCha20-Poly1305 of the JSON key material under the passphrase-derived key.
    public var sealedKeys: Data
    public var createdAt: String
    public var host: String

    static let defaultN = 1 << 15
    static let aad = Array("strata key file".utf8)

    /// The most scrypt work a key file may ask for: its memory (128·N·r bytes) at most 256 MiB, N·r·p at most 2^22
    /// (16 times what Strata writes, N = 2^15, r = 8, p = 1: ~32 MiB and ~0.1 s). The parameters come from a file
    /// anyone who can write the repository or hand over a bundle could have planted: unbounded, one key file could
    /// make every command allocate gigabytes and run for minutes before it even tried the right one.
    static let maxMemoryProduct = 1 << 21
    static let maxWork = 1 << 22

    /// Whether scrypt with these parameters is what a key file may ask for.
    static func acceptable(n: Int, r: Int, p: Int) -> Bool {
        n >= 1 << 10 && n <= 1 << 22 && n & (n - 1) == 0 && (1...32).contains(r) && (1...16).contains(p)
            && n * r <= maxMemoryProduct && n * r * p <= maxWork
    }

    /// scrypt's cost for this key file, for trying the cheapest first.
    var work: Int { n.multipliedReportingOverflow(by: r).partialValue.multipliedReportingOverflow(by: p).partialValue }

    static func derive(_ passphrase: String, salt: Data, n: Int, r: Int, p: Int) throws -> SymmetricKey {
        guard acceptable(n: n, r: r, p: p) else {
            throw StrataError.corrupt("key file has scrypt parameters out of range (N=\(n), r=\(r), p=\(p); at most 128·N·r = 256 MiB of memory and N·r·p = 2^22)")
        }
        do {
            return try KDF.Scrypt.deriveKey(from: Array(passphrase.utf8), salt: salt, outputByteCount: 32, rounds: n, blockSize: r, parallelism: p)
        } catch {
            throw StrataError(.internalError, "scrypt failed: \(error)")
        }
    }

    /// Seals `keys` under `passphrase` into a new key file.
    static func make(_ keys: KeyMaterial, passphrase: String, n: Int = defaultN) throws -> KeyFile {
        var rng = SystemRandomNumberGenerator()
        let salt = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let key = try derive(passphrase, salt: salt, n: n, r: 8, p: 1)
        let plaintext = try JSONEncoder().encode(keys)
        let sealed = try ChaChaPoly.seal(plaintext, using: key, authenticating: aad).combined
        return KeyFile(id: String(RandomName.make().prefix(16)), kdf: "scrypt", n: n, r: 8, p: 1, salt: salt, sealedKeys: sealed,
                       createdAt: Timestamp.format(Date()), host: Labels.hostName())
    }

    /// The key material, or nil when the passphrase is not this key file's.
    func open(passphrase: String) throws -> KeyMaterial? {
        guard kdf == "scrypt" else { throw StrataError(.unsupportedFormat, "key file \(id) uses key derivation '\(kdf)', which this strata does not know") }
        let key = try Self.derive(passphrase, salt: salt, n: n, r: r, p: p)
        guard let box = try? ChaChaPoly.SealedBox(combined: sealedKeys),
              let plaintext = try? ChaChaPoly.open(box, using: key, authenticating: Self.aad) else { return nil }
        guard let keys = try? JSONDecoder().decode(KeyMaterial.self, from: plaintext),
              keys.encryption.count == 32, keys.id.count == 32, keys.cut.count == 16 else {
            throw StrataError.corrupt("key file \(id) opened but holds damaged key material")
        }
        return keys
    }
}

/// The `keys/` directory of an encrypted repository.
public struct KeyStore {
    let repo: Repository

    var directory: String { FileSystem.join(repo.path, "keys") }

    public init(repo: Repository) { self.repo = repo }

    /// The key files that parse, cheapest scrypt first (then oldest), and one line for each file skipped. Trying
    /// the cheapest first means a planted key file asking for the most work allowed is tried after the real ones.
    static func load(directory: String) throws -> (files: [KeyFile], skipped: [String]) {
        var out: [KeyFile] = []
        var skipped: [String] = []
        for name in try wrap(try FileSystem.list(directory), "cannot list \(directory)") where !name.hasPrefix(".") {
            let path = FileSystem.join(directory, name)
            let bytes: [UInt8]
            do {
                bytes = try FileSystem.readFile(path, limit: 1 << 16)
            } catch let e as SystemCallError {
                skipped.append("keys/\(Labels.printable(name)): cannot be read (\(String(cString: strerror(e.errno))))")
                continue
            }
            guard let file = try? JSONDecoder().decode(KeyFile.self, from: Data(bytes)) else {
                skipped.append("keys/\(Labels.printable(name)): not a key file (not the JSON of §14 of FORMAT.md)")
                continue
            }
            guard file.id == name else {
                skipped.append("keys/\(Labels.printable(name)): its id is '\(Labels.printable(file.id))', not its name")
                continue
            }
            out.append(file)
        }
        out.sort { ($0.work, $0.createdAt) < ($1.work, $1.createdAt) }
        return (out, skipped)
    }

    /// Every key file.
    public func list() throws -> [KeyFile] { try Self.load(directory: directory).files }

    static func save(_ file: KeyFile, directory: String, tmp: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try wrap(try FileSystem.makeDirectory(directory), "cannot create \(directory)")
        try wrap(try AtomicFile.write(Array(try encoder.encode(file)) + [0x0a], to: FileSystem.join(directory, file.id), tmpDirectory: tmp),
                 "cannot write key file \(file.id)")
    }

    /// Runs `body` holding `keys/.lock` exclusively, so that two key changes at once cannot remove the last keys,
    /// and the repository's lock shared: a key file's draft is written in `tmp/`, which gc empties under its
    /// exclusive lock.
    private func locked<T>(_ body: () throws -> T) throws -> T {
        let repositoryLock = try repo.lock(.shared)
        defer { withExtendedLifetime(repositoryLock) {} }
        try wrap(try FileSystem.makeDirectory(directory), "cannot create \(directory)")
        let lockPath = FileSystem.join(directory, ".lock")
        let fd = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StrataError.io("cannot open \(lockPath)", SystemCallError(call: "open", path: lockPath, errno: errno)) }
        defer { Glibc.close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        return try body()
    }

    /// Adds a passphrase: a new key file for the same key material. Returns its id.
    /// `cost` is scrypt's N for the new key file (tests use the least).
    @discardableResult
    public func add(passphrase: String) throws -> String {
        try add(passphrase: passphrase, cost: KeyFile.defaultN)
    }

    @discardableResult
    func add(passphrase: String, cost: Int) throws -> String {
        try locked { try addUnlocked(passphrase: passphrase, cost: cost) }
    }

    private func addUnlocked(passphrase: String, cost: Int) throws -> String {
        guard let keys = repo.keys else { throw StrataError(.invalidArgument, "repository \(repo.path) is not encrypted") }
        try KeyStore.validate(passphrase)
        let file = try KeyFile.make(keys, passphrase: passphrase, n: cost)
        try Self.save(file, directory: directory, tmp: repo.tmpPath)
        return file.id
    }

    /// Removes a key file; the last one is refused (the repository could never be opened again).
    public func remove(_ id: String) throws {
        try locked { try removeUnlocked(id) }
    }

    private func removeUnlocked(_ id: String) throws {
        let files = try list()
        guard files.contains(where: { $0.id == id }) else { throw StrataError(.notFound, "key '\(id)' does not exist") }
        guard files.count > 1 else { throw StrataError(.refused, "key '\(id)' is the last key: removing it would lock the repository forever") }
        try wrap(try FileSystem.remove(FileSystem.join(directory, id)), "cannot remove key \(id)")
        try wrap(try FileSystem.syncDirectory(directory), "cannot sync \(directory)")
    }

    /// Replaces the passphrase of the key file that opened the repository: the new file is written before the old
    /// one is removed. Returns the new key file's id.
    @discardableResult
    public func changePassphrase(to passphrase: String) throws -> String {
        try changePassphrase(to: passphrase, cost: KeyFile.defaultN)
    }

    @discardableResult
    func changePassphrase(to passphrase: String, cost: Int) throws -> String {
        guard let old = repo.openedKeyID else { throw StrataError(.invalidArgument, "repository \(repo.path) is not encrypted") }
        return try locked { try changeUnlocked(old: old, passphrase: passphrase, cost: cost) }
    }

    private func changeUnlocked(old: String, passphrase: String, cost: Int) throws -> String {
        let id = try addUnlocked(passphrase: passphrase, cost: cost)
        try wrap(try FileSystem.remove(FileSystem.join(directory, old)), "cannot remove key \(old)")
        try wrap(try FileSystem.syncDirectory(directory), "cannot sync \(directory)")
        return id
    }

    static func validate(_ passphrase: String) throws {
        guard !passphrase.isEmpty else { throw StrataError(.invalidArgument, "the passphrase is empty") }
        guard passphrase.utf8.count <= 4096 else { throw StrataError(.invalidArgument, "the passphrase is longer than 4096 bytes") }
    }
}
