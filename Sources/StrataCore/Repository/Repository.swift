import Foundation

/// A Strata repository on disk: its layout, its config and the objects in it.
///
/// ```
/// REPO/config  packs/xx/<id>  index/<id>  snapshots/<id>  refs/tags/<name>  meta/  lock  tmp/
/// ```
public final class Repository: @unchecked Sendable {
    public let path: String
    public let config: RepositoryConfig

    var configPath: String { FileSystem.join(path, "config") }
    var packsPath: String { FileSystem.join(path, "packs") }
    var indexPath: String { FileSystem.join(path, "index") }
    var snapshotsPath: String { FileSystem.join(path, "snapshots") }
    var refsPath: String { FileSystem.join(path, "refs/tags") }
    var metaPath: String { FileSystem.join(path, "meta") }
    var tmpPath: String { FileSystem.join(path, "tmp") }
    var lockPath: String { FileSystem.join(path, "lock") }

    static let subdirectories = ["packs", "index", "snapshots", "refs", "refs/tags", "meta", "pending", "tmp"]

    private init(path: String, config: RepositoryConfig) {
        self.path = path
        self.config = config
    }

    /// Creates a new repository at `path` (a new or empty directory).
    /// - Throws: `invalidArgument` when the directory exists and is not empty.
    @discardableResult
    public static func create(at path: String, chunker: ChunkerParameters = .default,
                              compression: CompressionParameters = CompressionParameters(),
                              concurrentSnapshots: Int? = nil) throws -> Repository {
        try chunker.validate()
        try compression.validate()
        if let n = concurrentSnapshots, n < 1 || n > 1000 {
            throw StrataError(.invalidArgument, "the concurrent snapshot limit must be 1 to 1000, not \(n)")
        }
        if let st = try wrap({ try FileSystem.status(path) }(), "cannot inspect \(path)") {
            guard st.isDirectory else {
                throw StrataError(.invalidArgument, "cannot create a repository at \(path): it exists and is not a directory")
            }
            let entries = try wrap({ try FileSystem.list(path) }(), "cannot read \(path)")
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
            try wrap({ try FileSystem.makeDirectory(path) }(), "cannot create \(path)")
        }
        var config = RepositoryConfig(chunker: chunker, compression: compression)
        config.concurrentSnapshots = concurrentSnapshots
        try wrap({
            for sub in subdirectories { try FileSystem.makeDirectory(FileSystem.join(path, sub)) }
            for sub in ["packs", "refs", "."] { try FileSystem.syncDirectory(FileSystem.join(path, sub)) }
        }(), "cannot create the repository layout in \(path)")
        let repo = Repository(path: path, config: config)
        // The config is written last: a directory without it is not yet a repository.
        try wrap({ try AtomicFile.write(try config.encoded(), to: repo.configPath, tmpDirectory: repo.tmpPath) }(),
                 "cannot write \(repo.configPath)")
        return repo
    }

    /// Opens an existing repository.
    /// - Throws: `notARepository` when `path` holds no config; `unsupportedFormat` for a future format.
    public static func open(at path: String) throws -> Repository {
        guard let st = try wrap({ try FileSystem.status(path) }(), "cannot open \(path)") else {
            throw StrataError(.notARepository, "\(path) is not a Strata repository (it does not exist)")
        }
        guard st.isDirectory else {
            throw StrataError(.notARepository, "\(path) is not a Strata repository (not a directory)")
        }
        let configPath = FileSystem.join(path, "config")
        guard FileSystem.exists(configPath) else {
            throw StrataError(.notARepository, "\(path) is not a Strata repository (no config file)")
        }
        let bytes = try wrap({ try FileSystem.readFile(configPath, limit: 1 << 20) }(), "cannot read \(configPath)")
        let config = try RepositoryConfig.decode(bytes, path: configPath)
        return Repository(path: path, config: config)
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
