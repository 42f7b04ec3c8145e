import ArgumentParser
import FoundationEssentials
import StrataCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure this machine: hashing, zero detection, compression levels, decompression, sealing.",
        discussion: """
            Runs each piece of work Strata's steps are made of for a moment on one core and on all cores, on a \
            sample of an image's data (64 MiB of non-zero pages read from 64 places across it; --sample sets how \
            much, and a size as large as the image's data measures on all of it) or on generated data. With an image, \
            also prints the least time a first snapshot, an unchanged re-snapshot and a restore of it can take on \
            this machine (the physical floor the benchmarks in docs/BENCHMARKS.md are compared with). Needs no \
            repository and writes nothing.

            Examples:
              strata bench
              strata bench --image disk.img
              strata bench --image /dev/vg0/vm1 --level 1 --json
              strata bench --image disk.img --sample 4G
            """)

    @Option(help: ArgumentHelp("An image file or block device to sample and compute floors for.", valueName: "path"))
    var image: String?

    @Option(help: ArgumentHelp("How much of the image's data to measure on, at most (e.g. 64M, 2G): the more, the truer the compression rates; every measurement goes through all of it.", valueName: "size"))
    var sample = "64M"

    @Option(parsing: .unconditional, help: "The zstd level the floors assume (a repository's level).")
    var level = CompressionParameters.defaultLevel

    @Option(parsing: .unconditional, help: ArgumentHelp("How long each measurement runs at least, in seconds (and until it has gone through the sample once).", valueName: "seconds"))
    var secondsPerMeasure = 0.4

    @Flag(help: "Print the result as JSON on stdout.")
    var json = false

    @Flag(name: [.short, .long], help: "Do not show which measurement runs (on a terminal).")
    var quiet = false

    mutating func run() throws {
        guard (1...19).contains(level) else {
            throw StrataError(.invalidArgument, "--level \(level) is not valid: give a zstd level from 1 to 19")
        }
        guard secondsPerMeasure >= 0.001 && secondsPerMeasure <= 60 else {
            throw StrataError(.invalidArgument, "--seconds-per-measure \(String(cFormat: "%g", secondsPerMeasure)) is not valid: give 0.001 to 60 seconds")
        }
        // The sample is held in memory, with its compressed frames: a quarter of the machine's memory at most.
        let most = Int(min(ProcessInfo.processInfo.physicalMemory / 4, UInt64(Int.max)))
        guard let sampleLimit = ByteSize.parse(sample), sampleLimit >= 1 << 20, sampleLimit <= most else {
            throw StrataError(.invalidArgument, "--sample \(sample) is not valid: give a size from 1M to \(ByteSize.compact((most >> 20) << 20)) (a quarter of this machine's memory)")
        }
        let quiet = quiet || json
        let result = try MachineBenchmark(image: image, level: level, sampleLimit: sampleLimit, secondsPerMeasure: secondsPerMeasure).run { step in
            if !quiet && Terminal.stderrIsTTY { Terminal.writeErr("measuring \(step)…\r\u{1B}[K") }
        }
        if json {
            try JSONOutput.print(result)
            return
        }
        var rows = [["work", "one core", "\(result.cores) cores", "compressed to"]]
        for r in result.rates {
            rows.append([r.name, Format.bytes(Int64(r.oneCore)) + "/s", Format.bytes(Int64(r.allCores)) + "/s",
                         r.ratio.map { String(cFormat: "%.1f%%", $0 * 100) } ?? ""])
        }
        Terminal.writeOut("sample: \(result.sample)\n")
        Terminal.writeOut(Format.table(rows))
        if let f = result.floors {
            Terminal.writeOut("""
                floors for \(Format.bytes(f.dataBytes)) of data on \(result.cores) cores (zstd level \(level)):
                  first snapshot        \(String(cFormat: "%.2f s", f.firstSnapshot))  (hash + compress every data byte)
                  unchanged snapshot    \(String(cFormat: "%.2f s", f.unchangedSnapshot))  (hash every data byte)
                  restore               \(String(cFormat: "%.2f s", f.restore))  (decompress + verify + copy out every data byte)
                  an increment storing N new bytes: \(String(cFormat: "%.2f s", f.unchangedSnapshot)) + N / \(Format.bytes(Int64(1 / f.storingPerByte)))/s

                """)
        }
    }
}
