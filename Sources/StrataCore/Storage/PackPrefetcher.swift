/// Asks the kernel to start reading frames that are about to be needed, so that the workers that read them find
/// them in memory instead of each waiting for the disk in turn.
///
/// A snapshot's packs drop their pages once durable (`PackWriter`), and a repository restored days later is not in
/// memory either: without this, restore's workers read frame after frame from disk, one synchronous read each, and
/// a core waits through every one. Restore of the benchmark repository with its packs out of the page cache:
/// 1.64–2.11 s without, 1.49–1.54 s with, interleaved (warm: unchanged, 1.34–1.50 s). `fsck --read-data` asks for
/// the frames a few ahead of those its workers read.
final class PackPrefetcher {
    private let repo: Repository
    private let index: ChunkIndex
    private var open: [UInt32: FileHandleFD] = [:]

    init(repo: Repository, index: ChunkIndex) {
        self.repo = repo
        self.index = index
    }

    /// Starts reading the stored frame that holds `location`. A pack that cannot be opened is skipped: the read
    /// that needs it reports the problem.
    func prefetch(_ location: ChunkLocation) {
        prefetch(pack: Int(location.pack), offset: location.frameOffset, length: Int(location.frameCompressedLength))
    }

    /// Starts reading `length` bytes at `offset` of the pack with this ordinal in the index's pack table.
    func prefetch(pack: Int, offset: UInt64, length: Int) {
        let file: FileHandleFD
        if let f = open[UInt32(pack)] {
            file = f
        } else {
            if open.count >= min(16, OpenFiles.packsPerCache) { open.removeAll() }
            guard pack < index.packs.count,
                  let f = try? FileHandleFD.openForReading(repo.packFilePath(index.packs[pack])) else { return }
            open[UInt32(pack)] = f
            file = f
        }
        file.startReading(offset: Int64(offset), count: length)
    }
}
