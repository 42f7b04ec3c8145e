#if canImport(Glibc)
import Glibc
#endif

/// Writes one pack file: header, frames as they come, then the table of contents and trailer.
/// The pack is drafted in `tmp/` and renamed into `packs/` only when complete and fsynced.
final class PackWriter {
    private let repo: Repository
    private let draftPath: String
    private let file: FileHandleFD
    private(set) var size: Int64
    private(set) var toc = PackTOC()
    /// Where the bytes not yet handed to the kernel's write-back start.
    private var writebackFrom: Int64 = 0
    /// A pack asks the kernel to start writing its frames back every this many bytes, so that its fsync at the end
    /// waits for the last few MiB only, not the whole pack, while the writer holds up the frames behind it.
    static let writebackEvery: Int64 = 4 << 20

    init(repo: Repository) throws {
        self.repo = repo
        let draft = FileSystem.join(repo.tmpPath, "pack-" + RandomName.make())
        draftPath = draft
        let opened: FileHandleFD
        do {
            opened = try FileHandleFD.createExclusive(draft)
        } catch let e as SystemCallError where e.errno == ENOENT {
            try wrap(try FileSystem.makeDirectory(repo.tmpPath), "cannot create \(repo.tmpPath)")
            opened = try wrap(try FileHandleFD.createExclusive(draft), "cannot create a pack in \(repo.tmpPath)")
        } catch let e as SystemCallError {
            throw StrataError.io("cannot create a pack in \(repo.tmpPath)", e)
        }
        file = opened
        let header = PackTOC.header(version: repo.config.structureVersion)
        do {
            try header.withUnsafeBytes { try opened.pwrite($0.baseAddress!, count: $0.count, offset: 0) }
        } catch let e as SystemCallError {
            try? FileSystem.remove(draft)
            throw StrataError.io("cannot write pack \(draft)", e)
        }
        size = Int64(header.count)
    }

    var isEmpty: Bool { toc.frames.isEmpty }

    /// Appends a compressed frame holding `entries` (offsets within the decompressed frame).
    func append(compressed: UnsafeRawBufferPointer, rawLength: Int, kind: ObjectKind,
                entries: [(id: ObjectID, offset: UInt32, length: UInt32)]) throws {
        let frameNumber = UInt32(toc.frames.count)
        try wrap(try file.pwrite(compressed.baseAddress!, count: compressed.count, offset: size),
                 "cannot write pack \(draftPath)")
        toc.frames.append(PackFrame(offset: UInt64(size), compressedLength: UInt32(compressed.count),
                                    rawLength: UInt32(rawLength), kind: kind))
        for e in entries {
            toc.entries.append(PackEntry(id: e.id, kind: kind, frame: frameNumber, offset: e.offset, length: e.length))
        }
        size += Int64(compressed.count)
        if size - writebackFrom >= Self.writebackEvery {
            file.startWriteback(offset: writebackFrom, count: Int(size - writebackFrom))
            writebackFrom = size
        }
    }

    /// Writes the TOC and trailer, fsyncs and renames the pack into place. The caller fsyncs `packs/xx/` afterwards.
    /// - Returns: the pack's id and its final size, and whether a pack of that name was there already (a pack's
    ///   name is its table of contents' digest: the same objects packed again by a command that was interrupted
    ///   earlier; the fresh copy replaces it, but it is not this writer's own to remove).
    func finish() throws -> (id: ObjectID, size: Int64, toc: PackTOC, existed: Bool) {
        let tocBytes = try repo.sealer.seal(toc.encoded(version: repo.config.structureVersion), .toc)
        let id = ObjectID.sha256(tocBytes)
        let tail = tocBytes + PackTOC.trailer(tocLength: tocBytes.count, tocID: id)
        let finalPath = repo.packFilePath(id)
        var existed = false
        try wrap({
            try tail.withUnsafeBytes { try file.pwrite($0.baseAddress!, count: $0.count, offset: size) }
            try file.fsync()
            // A finished pack is rarely read soon: its pages go back to the machine (and to the next pack's writes).
            file.dropCachedPages()
            try file.close()
            try FileSystem.makeDirectory(FileSystem.directoryName(finalPath))
            existed = FileSystem.exists(finalPath)
            try FileSystem.rename(draftPath, finalPath)
        }(), "cannot write pack \(finalPath)")
        size += Int64(tail.count)
        return (id, size, toc, existed)
    }

    /// Removes the draft (after a failure).
    func abandon() {
        try? file.close()
        try? FileSystem.remove(draftPath)
    }
}
