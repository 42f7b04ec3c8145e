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

    static func derive(_ passphrase: String, salt: Data, n: Int, r: Int, p: Int) throws -> SymmetricKey {
        guard n >= 1 << 10, n <= 1 << 22, n & (n - 1) == 0, (1...32).contains(r), (1...16).contains(p) else {
            throw StrataError.corrupt("key file has scrypt parameters out of range (N=\(n), r=\(r), p=\(p))")
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

    static func load(directory: String) throws -> [KeyFile] {
        var out: [KeyFile] = []
        for name in try wrap(try FileSystem.list(directory), "cannot list \(directory)") where !name.hasPrefix(".") {
            let path = FileSystem.join(directory, name)
            guard let bytes = try? FileSystem.readFile(path, limit: 1 << 16),
                  let file = try? JSONDecoder().decode(KeyFile.self, from: Data(bytes)), file.id == name else { continue }
            out.append(file)
        }
        return out.sorted { $0.createdAt < $1.createdAt }
    }

    /// Every key file.
    public func list() throws -> [KeyFile] { try Self.load(directory: directory) }

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
