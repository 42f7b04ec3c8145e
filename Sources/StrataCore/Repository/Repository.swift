import FoundationEssentials

/// A Strata repository on disk: its layout, its config and the objects in it.
///
/// ```
/// REPO/config  packs/xx/<id>  index/<id>  snapshots/<id>  refs/tags/<name>  meta/  lock  tmp/
/// ```
public final class Repository: @unchecked Sendable {
    public let path: String
    public let config: RepositoryConfig
    /// The secret keys, when the repository is encrypted.
    let keys: KeyMaterial?
    /// The key file whose passphrase opened the repository.
    public let openedKeyID: String?
    /// Seals and opens every stored object.
    let sealer: ObjectSealer
    /// How chunk and node ids and cut decisions are computed.
    let identity: IdentityScheme

    public var isEncrypted: Bool { sealer.isEncrypted }
    /// Whether its snapshots may go only into encrypted repositories: every encrypted repository's, except a
    /// sealed bundle's whose sealed key material says they came from a plain repository.
    public var snapshotsStayEncrypted: Bool { isEncrypted && keys?.snapshotsEncrypted != false }
    /// Whether the sealed key material says where a sealed bundle's snapshots came from (bundles written since
    /// 2026-12-01); nil for a plain repository.
    var saysWhetherSnapshotsWereEncrypted: Bool? { keys.map { $0.snapshotsEncrypted != nil } }
    var keysPath: String { FileSystem.join(path, "keys") }

    var configPath: String { FileSystem.join(path, "config") }
    var packsPath: String { FileSystem.join(path, "packs") }
    var indexPath: String { FileSystem.join(path, "index") }
    var snapshotsPath: String { FileSystem.join(path, "snapshots") }
    var refsPath: String { FileSystem.join(path, "refs/tags") }
    var metaPath: String { FileSystem.join(path, "meta") }
    var tmpPath: String { FileSystem.join(path, "tmp") }
    var lockPath: String { FileSystem.join(path, "lock") }

    static let subdirectories = ["packs", "index", "snapshots", "refs", "refs/tags", "meta", "pending", "tmp"]

    private init(path: String, config: RepositoryConfig, keys: KeyMaterial? = nil, openedKeyID: String? = nil) {
        self.path = path
        self.config = config
        self.keys = keys
        self.openedKeyID = openedKeyID
        let scheme = ObjectSealer.Scheme(rawValue: config.encryption) ?? .none
        if let keys, scheme != .none {
            sealer = ObjectSealer(scheme: scheme, key: keys.encryptionKey)
            identity = IdentityScheme(keys: keys)
        } else {
            sealer = .plain
            identity = .plain
        }
    }

    /// Whether `other` cuts and names chunks exactly as this repository does, so that chunks and map nodes can be
    /// copied between them as they are (`init --copy-chunker-from`).
    public func sharesChunking(with other: Repository) -> Bool {
        config.chunker == other.config.chunker && config.chunkHash == other.config.chunkHash
            && keys?.id == other.keys?.id && keys?.cut == other.keys?.cut
    }

    /// Creates a new repository at `path` (a new or empty directory).
    /// - Throws: `invalidArgument` when the directory exists and is not empty.
    @discardableResult
    /// - Parameters:
    ///   - encryption: the AEAD that seals every object; `.none` for a plain repository.
    ///   - passphrase: for an encrypted repository, the passphrase of its first key file.
    ///   - chunkingFrom: a repository whose chunking (parameters, and id and cut keys when encrypted) the new one
    ///     shares, so that copies between them move only missing chunks.
    public static func create(at path: String, chunker: ChunkerParameters = .default,
                              compression: CompressionParameters = CompressionParameters(),
                              concurrentSnapshots: Int? = nil, encryption: ObjectSealer.Scheme = .none,
                              passphrase: String? = nil, chunkingFrom source: Repository? = nil,
                              format: Int = RepositoryConfig.currentFormat, snapshotsEncrypted: Bool? = nil) throws -> Repository {
        guard !path.isEmpty else { throw StrataError(.invalidArgument, "the repository path is empty: give a directory to create") }
        guard RepositoryConfig.supportedFormats.contains(format) else {
            throw StrataError(.invalidArgument, "repository format \(format) is not one this strata writes (\(RepositoryConfig.supportedFormats.lowerBound) to \(RepositoryConfig.supportedFormats.upperBound))")
        }
        var chunker = chunker
        var keys: KeyMaterial?
        if encryption != .none {
            guard let passphrase else { throw StrataError(.invalidArgument, "an encrypted repository needs a passphrase") }
            try KeyStore.validate(passphrase)
            keys = KeyMaterial.random()
            keys?.snapshotsEncrypted = snapshotsEncrypted
        }
        if let source {
            guard source.isEncrypted == (encryption != .none) else {
                throw StrataError(.invalidArgument, "a repository can share chunking only with one that is also \(source.isEncrypted ? "encrypted" : "unencrypted"): chunk ids are \(source.isEncrypted ? "keyed" : "plain SHA-256") there")
            }
            chunker = source.config.chunker
            if let sk = source.keys { keys?.id = sk.id; keys?.cut = sk.cut }
        }
        try chunker.validate()
        try compression.validate()
        if let n = concurrentSnapshots, n < 1 || n > 1000 {
            throw StrataError(.invalidArgument, "the concurrent snapshot limit must be 1 to 1000, not \(n)")
        }
        if let st = try wrap(try FileSystem.status(path), "cannot inspect \(path)") {
            guard st.isDirectory else {
                throw StrataError(.invalidArgument, "cannot create a repository at \(path): it exists and is not a directory")
            }
            let entries = try wrap(try FileSystem.list(path), "cannot read \(path)")
            guard entries.isEmpty else {
                if entries.contains("config") {
                    throw StrataError(.invalidArgument, "\(path) is already a repository")
                }
                throw StrataError(.invalidArgument, "cannot create a repository at \(path): the directory is not empty")
            }
        } else {
            let parent = FileSystem.directoryName(path)
            guard (try? FileSystem.status(parent))??.isDirectory == true else {
                throw StrataError(.notFound, "cannot create a repository at \(path): \(parent) does not exist")
            }
            try wrap(try FileSystem.makeDirectory(path), "cannot create \(path)")
        }
        var config = RepositoryConfig(chunker: chunker, compression: compression, format: format)
        config.concurrentSnapshots = concurrentSnapshots
        config.snapshotsEncrypted = snapshotsEncrypted
        try wrap({
            for sub in subdirectories { try FileSystem.makeDirectory(FileSystem.join(path, sub)) }
            for sub in ["packs", "refs", "."] { try FileSystem.syncDirectory(FileSystem.join(path, sub)) }
        }(), "cannot create the repository layout in \(path)")
        config.encryption = encryption.rawValue
        var keyID: String?
        if let keys, let passphrase {
            let file = try KeyFile.make(keys, passphrase: passphrase)
            try KeyStore.save(file, directory: FileSystem.join(path, "keys"), tmp: FileSystem.join(path, "tmp"))
            keyID = file.id
        }
        let repo = Repository(path: path, config: config, keys: keys, openedKeyID: keyID)
        // The config is written last: a directory without it is not yet a repository.
        try wrap(try AtomicFile.write(try config.encoded(), to: repo.configPath, tmpDirectory: repo.tmpPath),
                 "cannot write \(repo.configPath)")
        return repo
    }

    /// Opens an existing repository.
    /// - Throws: `notARepository` when `path` holds no config; `unsupportedFormat` for a future format.
    /// - Parameter passphrase: asked for only when the repository is encrypted.
    /// - Throws: `authentication` when no key file opens with the passphrase.
    public static func open(at path: String, passphrase: (() throws -> String)? = nil) throws -> Repository {
        guard let st = try wrap(try FileSystem.status(path), "cannot open \(path)") else {
            throw StrataError(.notARepository, "\(path) is not a Strata repository (it does not exist)")
        }
        guard st.isDirectory else {
            throw StrataError(.notARepository, "\(path) is not a Strata repository (not a directory)")
        }
        let configPath = FileSystem.join(path, "config")
        // A repository this user may not read is not "no repository": say why (a cron job run as the wrong user).
        guard try wrap(try FileSystem.linkStatus(configPath), "cannot open the repository \(path)") != nil else {
            throw StrataError(.notARepository, "\(path) is not a Strata repository (no config file)")
        }
        // Writes go through these directories: a symlink planted in place of one would send them elsewhere.
        for sub in subdirectories + ["keys"] {
            let p = FileSystem.join(path, sub)
            if let st = try wrap(try FileSystem.linkStatus(p), "cannot inspect \(p)"), !st.isDirectory {
                throw StrataError.corrupt("repository \(path) is damaged: \(sub) is not a directory (a symlink or a file); Strata does not follow it")
            }
        }
        let bytes = try wrap(try FileSystem.readFile(configPath, limit: 1 << 20), "cannot read \(configPath)")
        let config = try RepositoryConfig.decode(bytes, path: configPath)
        let keysPath = FileSystem.join(path, "keys")
        guard config.encryption != ObjectSealer.Scheme.none.rawValue else {
            // The config is not authenticated: one edited to say "none" must not make the next snapshot of an
            // encrypted repository go to disk in the clear.
            let keyNames = ((try? FileSystem.list(keysPath)) ?? []).filter { !$0.hasPrefix(".") }
            guard keyNames.isEmpty else {
                throw StrataError.corrupt("repository \(path) is damaged: its config says it is not encrypted, but keys/ holds \(keyNames.count) key file(s) (was the config changed?); nothing was read or written")
            }
            return Repository(path: path, config: config)
        }
        let (files, skipped) = try KeyStore.load(directory: keysPath)
        guard !files.isEmpty else {
            if skipped.isEmpty { throw StrataError.corrupt("repository \(path) is encrypted but has no key files") }
            throw StrataError.corrupt("repository \(path) is encrypted but none of its key files can be read: \(skipped.joined(separator: "; "))")
        }
        guard let passphrase else {
            throw StrataError(.authentication, "repository \(path) is encrypted: give its passphrase with --password-file, STRATA_PASSWORD_FILE or --password-command, or run at a terminal")
        }
        let secret = try passphrase()
        var unreadable: [String] = []
        for file in files {
            do {
                if let keys = try file.open(passphrase: secret) {
                    return Repository(path: path, config: config, keys: keys, openedKeyID: file.id)
                }
            } catch let e as StrataError {
                // One damaged or foreign key file must not stop the others from being tried.
                unreadable.append("\(file.id): \(e.message)")
            }
        }
        if !unreadable.isEmpty && unreadable.count == files.count {
            throw StrataError.corrupt("no key file of repository \(path) can be used: \(unreadable.joined(separator: "; "))")
        }
        // AEAD cannot tell a damaged key file from one sealed under another passphrase.
        throw StrataError(.authentication, "wrong passphrase for repository \(path): none of its \(files.count) key file(s) opens with it (or they are damaged)")
    }

    /// Takes the repository lock for the lifetime of the returned object.
    public func lock(_ mode: RepositoryLock.Mode, wait: Bool = true, onWait: () -> Void = {}) throws -> RepositoryLock {
        try RepositoryLock(path: lockPath, mode: mode, wait: wait, onWait: onWait)
    }

    /// Path of a pack file: `packs/<first two hex digits>/<64 hex digits>`.
    func packFilePath(_ id: ObjectID) -> String {
        let hex = id.hex
        return packsPath + "/" + String(hex.prefix(2)) + "/" + hex
    }
}

/// Runs `body`, turning a `SystemCallError` into a `StrataError` whose message starts with `what`.
@discardableResult
func wrap<T>(_ body: @autoclosure () throws -> T, _ what: @autoclosure () -> String) throws -> T {
    do {
        return try body()
    } catch let error as SystemCallError {
        throw StrataError.io(what(), error)
    }
}
