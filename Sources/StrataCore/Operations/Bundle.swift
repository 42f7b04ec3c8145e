import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A self-contained, verifiable file holding snapshots: a small repository of their own (config, key file when
/// sealed, packs, index, manifests) serialized into one file with a SHA-256 over all of it.
///
/// ```
/// "STRATA-BUNDLE-1\n"                               16 bytes
/// entries: u8 1 | u16 LE path length | path | u64 LE data length | data      (repeated)
/// end:     u8 0 | SHA-256 of every byte before it                            33 bytes
/// ```
/// Paths are repository-relative and must match the repository layout (nothing else is accepted on import).
public enum Bundle {
    static let magic = Array("STRATA-BUNDLE-1\n".utf8)

    /// Exports snapshots from `repo` into `file`. A bundle of an encrypted repository must be sealed
    /// (`passphrase` given): encrypted snapshots stay encrypted. `progress` hears of two stages: "copying" (the
    /// snapshots' data bytes, verified into a staging repository, as `SnapshotCopier.copy` counts them) and "writing" (the bundle's bytes).
    public static func export(_ snapshots: [Snapshot], from repo: Repository, to file: String, passphrase: String?,
                              progress: ProgressReporter? = nil) throws -> CopyResult {
        do {
            return try exportBundle(snapshots, from: repo, to: file, passphrase: passphrase, progress: progress)
        } catch {
            throw Interruption.retell(error, "export to \(file)", "no bundle was written")
        }
    }

    private static func exportBundle(_ snapshots: [Snapshot], from repo: Repository, to file: String, passphrase: String?,
                                     progress: ProgressReporter?) throws -> CopyResult {
        let clock = ContinuousClock.now
        if repo.isEncrypted && passphrase == nil {
            throw StrataError(.invalidArgument, "snapshots of an encrypted repository can only be exported into a sealed bundle: give a bundle passphrase")
        }
        guard !file.isEmpty else { throw StrataError(.invalidArgument, "the bundle path is empty: give a file to write") }
        guard file != "-" else {
            throw StrataError(.invalidArgument, "a bundle is written to a file, not to standard output: give a file name (./- for a file named -)")
        }
        if (try? FileSystem.status(file))??.isDirectory == true {
            throw StrataError(.invalidArgument, "bundle \(file) is a directory; give a file name")
        }
        guard !FileSystem.exists(file) else { throw StrataError(.invalidArgument, "bundle \(file) exists; remove it first") }
        let directory = FileSystem.directoryName(file)
        guard (try? FileSystem.status(directory))??.isDirectory == true else {
            throw StrataError(.notFound, "cannot export to \(file): directory \(directory) does not exist")
        }
        // The source's lock, shared, for the whole export (not only its copy stage): gc and fsck --repair empty tmp/,
        // where the bundle's repository is built, under their exclusive lock. A repository that cannot be written
        // (mounted read-only) has no lock to take, and no gc to fear.
        let lock = try? repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        try SnapshotStore(repo: repo).requireStillThere(snapshots)
        // The bundle's repository is built in the source's tmp/, or beside the bundle when the source cannot be
        // written (a backup disk mounted read-only).
        var work = FileSystem.join(repo.tmpPath, "bundle-" + RandomName.make())
        do {
            try FileSystem.makeDirectory(work)
        } catch let e as SystemCallError where [EROFS, EACCES, EPERM].contains(e.errno) {
            work = FileSystem.join(directory, "." + FileSystem.baseName(file) + ".strata-" + RandomName.make())
            try wrap(try FileSystem.makeDirectory(work), "cannot create \(work)")
        } catch let e as SystemCallError {
            throw StrataError.io("cannot create \(work)", e)
        }
        defer { try? FileManager.default.removeItem(atPath: work) }
        // A plain bundle of a plain repository shares its chunking, so the copy moves chunks as they are. The bundle's
        // repository has the source's format, so a bundle of a format-1 repository opens wherever the source did.
        let staging = try Repository.create(at: work, chunker: repo.config.chunker, compression: repo.config.compression,
                                            encryption: passphrase == nil ? .none : .chacha20poly1305, passphrase: passphrase,
                                            chunkingFrom: passphrase == nil && !repo.isEncrypted ? repo : nil,
                                            format: repo.config.format, snapshotsEncrypted: passphrase == nil ? nil : repo.isEncrypted)
        progress?.stage("copying")
        var result = try SnapshotCopier(from: repo, to: staging).copy(snapshots, progress: progress)
        progress?.stage("writing")
        try write(directory: work, to: file, progress: progress)
        result.seconds = clock.secondsElapsed
        return result
    }

    /// Imports every snapshot of a bundle into `repo`. The bundle is checked whole before anything is added.
    /// `progress` hears of four stages: "checking" (the bundle's checksum over its bytes), "unpacking" (its bytes
    /// into a staging repository), "verifying" (every frame decompressed and every object re-hashed, as
    /// `fsck --read-data`) and "adding" (the snapshots' bytes copied into `repo`, as `SnapshotCopier.copy` counts them).
    /// - Parameter expectSealed: a bundle passphrase was given, so the bundle must be sealed: an unsealed one in its
    ///   place (anyone can write one) is refused, not imported with the passphrase ignored.
    public static func `import`(_ file: String, into repo: Repository, passphrase: (() throws -> String)?,
                                expectSealed: Bool = false, progress: ProgressReporter? = nil) throws -> CopyResult {
        let clock = ContinuousClock.now
        // The repository's lock, shared, for the whole import: its staging folder lives in tmp/, which gc and
        // fsck --repair empty under their exclusive lock (an import in its checking, unpacking or verifying stage
        // lost its staging folder to them and failed).
        let lock = try repo.lock(.shared)
        defer { withExtendedLifetime(lock) {} }
        let work = FileSystem.join(repo.tmpPath, "bundle-" + RandomName.make())
        defer { try? FileManager.default.removeItem(atPath: work) }
        do {
            try read(file, into: work, progress: progress)
        } catch {
            throw Interruption.retell(error, "import of bundle \(file)", "nothing was added")
        }
        // Encrypted snapshots stay encrypted: a sealed bundle of an encrypted repository goes only into an encrypted
        // one (told before its passphrase is asked for).
        let config = try RepositoryConfig.decode(try wrap(try FileSystem.readFile(FileSystem.join(work, "config")), "cannot read \(file)"), path: file)
        if config.encryption == "none" && expectSealed {
            throw StrataError(.refused, "bundle \(file) is not sealed, but a bundle passphrase was given (a sealed bundle may have been replaced): nothing was imported")
        }
        let encryptedSnapshots = "bundle \(file) holds snapshots of an encrypted repository and \(repo.path) is not encrypted: encrypted snapshots stay encrypted; import it into an encrypted repository"
        if config.encryption != "none" && !repo.isEncrypted && config.snapshotsEncrypted != false {
            throw StrataError(.invalidArgument, encryptedSnapshots)
        }
        let staging: Repository
        do {
            staging = try Repository.open(at: work, passphrase: passphrase)
        } catch let e as StrataError where e.code == .authentication && e.message.hasPrefix("wrong passphrase") {
            // The bundle is unpacked into a temporary repository; name the bundle, not that.
            throw StrataError(.authentication, "wrong passphrase for bundle \(file): it does not open with it")
        }
        // The config's word is not authenticated (anyone can change it and recompute the checksum); the sealed key
        // material's is. A bundle written before it carried that word goes only into an encrypted repository.
        if staging.snapshotsStayEncrypted && !repo.isEncrypted {
            if staging.saysWhetherSnapshotsWereEncrypted == false {
                throw StrataError(.invalidArgument, "bundle \(file) was written by an earlier strata, which did not seal whether its snapshots were encrypted; import it into an encrypted repository, or export it again")
            }
            throw StrataError(.invalidArgument, encryptedSnapshots)
        }
        let copier = SnapshotCopier(from: staging, to: repo)
        do {
            progress?.stage("verifying")
            let report = try Checker(repo: staging).run(readData: true, progress: progress)
            guard report.isHealthy else {
                throw StrataError.corrupt("bundle \(file) is damaged: \(report.problems.first?.message ?? "")")
            }
            // Verified whole just now, in this repository's tmp/: whole frames are not decompressed and hashed again
            // on their way in (import of the benchmark's day1 bundle: 2.51–3.79 s before, 1.71–1.95 s; docs/BENCHMARKS.md).
            copier.sourceVerified = true
            let snapshots = try SnapshotCatalog(repo: staging).list().snapshots.map(\.snapshot)
            progress?.stage("adding")
            var result = try copier.copy(snapshots.reversed(), progress: progress)
            result.seconds = clock.secondsElapsed
            return result
        } catch {
            throw Interruption.retell(error, "import of bundle \(file)",
                                      copier.committed == 0 ? "nothing was added" : "\(copier.committed) of its snapshots were added, the rest not")
        }
    }

    /// Bytes moved per read and write when a file goes into or out of a bundle: packs (~16 MiB each) are streamed
    /// through one buffer of this size, so export and import hold no whole file in memory.
    static let pieceSize = 1 << 20

    static func write(directory: String, to file: String, progress: ProgressReporter?) throws {
        // A draft beside the bundle's name that no process holds was left by an export that was killed.
        DraftFile.removeUnheld(in: FileSystem.directoryName(file), prefix: FileSystem.baseName(file) + ".strata-")
        let draft = file + ".strata-" + RandomName.make()
        let out = try wrap(try FileHandleFD.open(draft, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o600), "cannot create \(draft)")
        DraftFile.hold(out.fd)
        var hasher = SHA256Stream()
        var offset: Int64 = 0
        func emit(_ bytes: UnsafeRawBufferPointer) throws {
            guard bytes.count > 0 else { return }
            try wrap(try out.pwrite(bytes.baseAddress!, count: bytes.count, offset: offset), "cannot write \(draft)")
            hasher.update(bytes)
            offset += Int64(bytes.count)
        }
        let buffer = ByteBuffer(capacity: pieceSize)
        do {
            let files = try layoutFiles(directory)
            var total = Int64(magic.count + 33)
            for path in files {
                total += Int64(11 + path.utf8.count)
                    + (try wrap(try FileSystem.status(FileSystem.join(directory, path))?.size ?? 0, "cannot read \(path)"))
            }
            try magic.withUnsafeBytes { try emit($0) }
            for path in files {
                let input = try wrap(try FileHandleFD.openForReading(FileSystem.join(directory, path)), "cannot read \(path)")
                defer { try? input.close() }
                let size = try wrap(try input.stat().size, "cannot read \(path)")
                var header = ByteWriter()
                header.u8(1)
                header.raw(withUnsafeBytes(of: UInt16(path.utf8.count).littleEndian) { Array($0) })
                header.raw(Array(path.utf8))
                header.u64(UInt64(size))
                try header.bytes.withUnsafeBytes { try emit($0) }
                var done: Int64 = 0
                while done < size {
                    let n = try wrap(try input.pread(into: buffer.base, count: Int(min(Int64(pieceSize), size - done)), offset: done),
                                     "cannot read \(path)")
                    guard n > 0 else { throw StrataError.io("cannot read \(path)", SystemCallError(call: "pread", path: path, errno: EIO)) }
                    try Interruption.check()
                    try emit(UnsafeRawBufferPointer(start: buffer.base, count: n))
                    done += Int64(n)
                    progress?.progress(done: offset, total: total, newBytes: 0)
                }
            }
            try [UInt8(0)].withUnsafeBytes { try emit($0) }
            let digest = hasher.finish().bytes
            try digest.withUnsafeBytes { raw in try wrap(try out.pwrite(raw.baseAddress!, count: 32, offset: offset), "cannot write \(draft)") }
            progress?.progress(done: offset + 32, total: total, newBytes: 0)
            try wrap(try out.fsync(), "cannot write \(draft)")
            try wrap(try out.close(), "cannot write \(draft)")
            try wrap(try FileSystem.rename(draft, file), "cannot write \(file)")
            // The rename is durable only once the directory is: a bundle written to a disk about to be unplugged
            // must be there afterwards. If that fails, the bundle (new, ours) goes too: an error means no bundle.
            do {
                try wrap(try FileSystem.syncDirectory(FileSystem.directoryName(file)), "cannot write \(file)")
            } catch {
                try? FileSystem.remove(file)
                throw error
            }
        } catch {
            try? out.close()
            try? FileSystem.remove(draft)
            throw error
        }
    }

    /// The files of a staging repository that a bundle carries, in a stable order.
    private static func layoutFiles(_ directory: String) throws -> [String] {
        var out = ["config"]
        for dir in ["keys", "index", "snapshots", "meta"] {
            for name in try FileSystem.list(FileSystem.join(directory, dir)) where !name.hasPrefix(".") { out.append(dir + "/" + name) }
        }
        for sub in try FileSystem.list(FileSystem.join(directory, "packs")) {
            for name in try FileSystem.list(FileSystem.join(directory, "packs/" + sub)) { out.append("packs/" + sub + "/" + name) }
        }
        return out
    }

    /// Whether a path from a bundle names a file of the repository layout (no traversal, nothing unexpected).
    static func isLayoutPath(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        func hex(_ s: String, _ n: Int) -> Bool { s.utf8.count == n && Hex.isHex(Substring(s)) }
        switch parts.count {
        case 1: return parts[0] == "config"
        case 2:
            switch parts[0] {
            case "keys": return hex(parts[1], 16)
            case "index", "snapshots", "meta": return hex(parts[1], 64)
            default: return false
            }
        case 3: return parts[0] == "packs" && hex(parts[1], 2) && hex(parts[2], 64) && parts[2].hasPrefix(parts[1])
        default: return false
        }
    }

    static func read(_ file: String, into directory: String, progress: ProgressReporter?) throws {
        let bad = { (why: String) in StrataError.corrupt("bundle \(file) is damaged or truncated: \(why)") }
        let input: FileHandleFD
        do { input = try FileHandleFD.openForReading(file) } catch let e as SystemCallError {
            if e.errno == ENOENT { throw StrataError(.notFound, "bundle \(file) does not exist") }
            throw StrataError.io("cannot open \(file)", e)
        }
        let size = try wrap(try input.stat().size, "cannot read \(file)")
        // A file that does not even start like a bundle is named as such, not as a damaged bundle.
        var head = [UInt8](repeating: 0, count: magic.count)
        let got = try head.withUnsafeMutableBytes { try wrap(try input.pread(into: $0.baseAddress!, count: magic.count, offset: 0), "cannot read \(file)") }
        guard got == magic.count, head == magic else {
            throw StrataError(.invalidArgument, "\(file) is not a Strata bundle (made by 'strata export')")
        }
        guard size >= Int64(magic.count + 33) else { throw bad("too short") }
        // First pass: the checksum over everything, before a single file is written.
        var hasher = SHA256Stream()
        let buffer = ByteBuffer(capacity: pieceSize)
        var offset: Int64 = 0
        let body = size - 32
        progress?.stage("checking")
        while offset < body {
            let n = try wrap(try input.pread(into: buffer.base, count: Int(min(Int64(pieceSize), body - offset)), offset: offset), "cannot read \(file)")
            guard n > 0 else { throw bad("short read") }
            try Interruption.check()
            hasher.update(UnsafeRawBufferPointer(start: buffer.base, count: n))
            offset += Int64(n)
            progress?.progress(done: offset, total: body, newBytes: 0)
        }
        var stored = [UInt8](repeating: 0, count: 32)
        _ = try stored.withUnsafeMutableBytes { try wrap(try input.pread(into: $0.baseAddress!, count: 32, offset: body), "cannot read \(file)") }
        guard hasher.finish().bytes == stored else { throw bad("its checksum does not match") }
        // Second pass: the entries.
        func readBytes(_ n: Int, at o: inout Int64) throws -> [UInt8] {
            guard n >= 0, o + Int64(n) <= body else { throw bad("an entry runs past the end") }
            var out = [UInt8](repeating: 0, count: n)
            if n > 0 { _ = try out.withUnsafeMutableBytes { try wrap(try input.pread(into: $0.baseAddress!, count: n, offset: o), "cannot read \(file)") } }
            o += Int64(n)
            return out
        }
        var o: Int64 = 0
        progress?.stage("unpacking")
        guard try readBytes(magic.count, at: &o) == magic else { throw bad("not a Strata bundle") }
        try wrap(try FileSystem.makeDirectory(directory), "cannot create \(directory)")
        for sub in ["keys"] + Repository.subdirectories { try wrap(try FileSystem.makeDirectory(FileSystem.join(directory, sub)), "cannot create \(directory)") }
        var sawConfig = false
        var keyFiles = 0
        while true {
            let type = try readBytes(1, at: &o)[0]
            if type == 0 { break }
            guard type == 1 else { throw bad("unknown entry type \(type)") }
            let lengthBytes = try readBytes(2, at: &o)
            let pathLength = Int(lengthBytes[0]) | Int(lengthBytes[1]) << 8
            let path = String(decoding: try readBytes(pathLength, at: &o), as: UTF8.self)
            guard isLayoutPath(path) else { throw bad("it names an unexpected file '\(path.prefix(80))'") }
            // A sealed bundle has one key file (export writes one); more could only make import pay for scrypt
            // again and again before it says the passphrase is wrong.
            if path.hasPrefix("keys/") {
                keyFiles += 1
                guard keyFiles == 1 else { throw bad("it holds more than one key file (a bundle has one)") }
            }
            let sizeBytes = try readBytes(8, at: &o)
            let dataLength = sizeBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard dataLength <= UInt64(body - o) else { throw bad("an entry runs past the end") }
            let target = FileSystem.join(directory, path)
            if path.hasPrefix("packs/") { try wrap(try FileSystem.makeDirectory(FileSystem.directoryName(target)), "cannot create \(target)") }
            let fh = try wrap(try FileHandleFD.createExclusive(target), "cannot unpack \(path)")
            defer { try? fh.close() }
            var written: Int64 = 0
            while written < Int64(dataLength) {
                let n = Int(min(Int64(pieceSize), Int64(dataLength) - written))
                let got = try wrap(try input.pread(into: buffer.base, count: n, offset: o), "cannot read \(file)")
                guard got == n else { throw bad("short read") }
                try Interruption.check()
                try wrap(try fh.pwrite(buffer.base, count: n, offset: written), "cannot unpack \(path)")
                written += Int64(n)
                o += Int64(n)
                progress?.progress(done: o, total: body, newBytes: 0)
            }
            try wrap(try fh.close(), "cannot unpack \(path)")
            if path == "config" { sawConfig = true }
        }
        guard o == body, sawConfig else { throw bad("its entries do not end where the checksum starts") }
        progress?.progress(done: o, total: body, newBytes: 0)
    }
}

/// Incremental SHA-256 over several buffers.
struct SHA256Stream {
    private var hasher = Crypto.SHA256()

    mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    mutating func finish() -> ObjectID {
        let d = hasher.finalize()
        return d.withUnsafeBytes { ObjectID(bytes: $0.baseAddress!) }
    }
}

import Crypto
