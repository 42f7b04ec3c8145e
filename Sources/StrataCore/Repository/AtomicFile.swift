#if canImport(Glibc)
import Glibc
#endif

/// Durable replacement of a file: write to the repository's `tmp/`, fsync, rename over the final name,
/// fsync the directory. A crash at any instant leaves either the old file or the new one, never a mix.
enum AtomicFile {
    /// Writes `bytes` to `path` atomically and durably, using `tmpDirectory` (same file system) for the draft.
    static func write(_ bytes: [UInt8], to path: String, tmpDirectory: String) throws {
        let draft = FileSystem.join(tmpDirectory, "draft-" + RandomName.make())
        do {
            let file: FileHandleFD
            do {
                file = try FileHandleFD.createExclusive(draft)
            } catch let e as SystemCallError where e.errno == ENOENT {
                // tmp/ can be missing from a repository copied by a tool that drops empty directories.
                try FileSystem.makeDirectory(tmpDirectory)
                file = try FileHandleFD.createExclusive(draft)
            }
            try bytes.withUnsafeBytes { raw in
                if raw.count > 0 { try file.pwrite(raw.baseAddress!, count: raw.count, offset: 0) }
            }
            try file.fsync()
            try file.close()
            try FileSystem.rename(draft, path)
            try FileSystem.syncDirectory(FileSystem.directoryName(path))
        } catch {
            try? FileSystem.remove(draft)
            throw error
        }
    }
}

/// Random names for drafts and pending journals.
enum RandomName {
    static func make() -> String {
        var rng = SystemRandomNumberGenerator()
        let a = rng.next() as UInt64
        let b = rng.next() as UInt64
        return Hex.encode(a) + Hex.encode(b)
    }
}
