import Foundation
import Testing

/// `strata bench` measures this machine and derives floors for an image; it needs no repository.
@Suite("bench")
struct BenchTests {
    @Test("bench measures every piece of work and derives floors for an image")
    func measuresAndDerivesFloors() throws {
        let s = Scratch()
        // 3 MiB of data, the last MiB zero, then a 5 MiB hole: data bytes are the 2 MiB of non-zero pages.
        let img = try CommandLineTests.image(s, bytes: 3 << 20)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: img))
        try handle.truncate(atOffset: 8 << 20)
        try handle.close()
        let cli = CLI(repo: nil)
        let r = try cli.run(["bench", "--image", img, "--json", "--seconds-per-measure", "0.02"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let rates = j["rates"] as! [[String: Any]]
        let names = rates.map { $0["name"] as! String }
        for expected in ["sha256", "zero-page", "zstd level 1,", "zstd level 3,", "zstd decompression", "memory copy",
                         "aes-256-gcm", "chacha20-poly1305"] {
            #expect(names.contains { $0.hasPrefix(expected) }, "no \(expected) in \(names)")
        }
        for rate in rates {
            #expect((rate["oneCore"] as! Double) > 0 && (rate["allCores"] as! Double) > 0, "\(rate)")
        }
        let level3 = rates.first { ($0["name"] as! String).hasPrefix("zstd level 3,") }!
        let ratio = level3["ratio"] as! Double
        #expect(ratio > 0.05 && ratio < 1.01, "ratio \(ratio)")
        let floors = j["floors"] as! [String: Any]
        #expect(floors["dataBytes"] as? Int == 2 << 20)
        let first = floors["firstSnapshot"] as! Double, unchanged = floors["unchangedSnapshot"] as! Double
        #expect(first > unchanged && unchanged > 0)
        #expect(j["sampleBytes"] as? Int == 2 << 20)

        // --sample bounds what is read and measured; the floors still count all of the image's data.
        let small = try cli.run(["bench", "--image", img, "--json", "--sample", "1M", "--seconds-per-measure", "0.001"])
        #expect(small.status == 0, "\(small.stderr)")
        let j1 = try JSONSerialization.jsonObject(with: Data(small.stdout.utf8)) as! [String: Any]
        #expect(j1["sampleBytes"] as? Int == 1 << 20)
        #expect((j1["sample"] as! String).hasPrefix("1.0 MiB of data from 1 place across"), "\(j1["sample"]!)")
        #expect(((j1["floors"] as! [String: Any])["dataBytes"] as! Int) >= 2 << 20)
        for bad in ["0", "512K", "lots", "1000000G"] {
            let r = try cli.run(["bench", "--image", img, "--sample", bad])
            #expect(r.status == 2 && r.stderr.hasPrefix("strata: --sample \(bad) is not valid: give a size from 1M to ")
                    && r.stderr.split(separator: "\n").count == 1, "\(bad): \(r.status) \(r.stderr)")
        }
    }

    @Test("without an image, a generated sample and no floors; a bad image is one clear line")
    func generatedAndErrors() throws {
        let s = Scratch()
        let cli = CLI(repo: nil)
        let r = try cli.run(["bench", "--json", "--seconds-per-measure", "0.01"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(j["floors"] == nil)
        #expect((j["sample"] as! String).hasPrefix("generated"))
        // A repository given before the verb (an alias like `strata -r ~/repo`) is ignored: bench needs none.
        for repoOption in [["-r", s.path], ["--repo=\(s.path)"]] {
            let aliased = try cli.run(repoOption + ["bench", "--json", "--seconds-per-measure", "0.001"])
            #expect(aliased.status == 0, "\(repoOption) \(aliased.stderr)")
        }

        let missing = try cli.run(["bench", "--image", s.file("nope.img"), "--seconds-per-measure", "0.01"])
        #expect(missing.status == 3 && missing.stderr.hasPrefix("strata: ") && missing.stderr.split(separator: "\n").count == 1,
                "\(missing.status) \(missing.stderr)")
        _ = FileManager.default.createFile(atPath: s.file("empty.img"), contents: Data())
        let empty = try cli.run(["bench", "--image", s.file("empty.img"), "--seconds-per-measure", "0.01"])
        #expect(empty.status == 2 && empty.stderr.contains("holds no data"), "\(empty.status) \(empty.stderr)")
        let badLevel = try cli.run(["bench", "--level", "40"])
        #expect(badLevel.status == 2 && badLevel.stderr.hasPrefix("strata: --level 40 is not valid"), "\(badLevel.stderr)")
        // A named pipe is refused before it is opened (opening it would wait for a writer); so is a directory.
        #expect(mkfifo(s.file("fifo"), 0o600) == 0)
        let fifo = try CLI.exec("/usr/bin/timeout", ["10", CLI.binary, "bench", "--image", s.file("fifo")])
        #expect(fifo.status == 2 && fifo.stderr.contains("is neither"), "\(fifo.status) \(fifo.stderr)")
        #expect(try cli.run(["bench", "--image", s.path]).status == 2)
        // Too little data to time anything on: generated data for the rates, the image's own bytes for the floors;
        // the shortest measurement still measures something.
        _ = FileManager.default.createFile(atPath: s.file("one.img"), contents: Data([7]))
        let tiny = try cli.run(["bench", "--image", s.file("one.img"), "--json", "--seconds-per-measure", "0.001"])
        #expect(tiny.status == 0, "\(tiny.stderr)")
        let j2 = try JSONSerialization.jsonObject(with: Data(tiny.stdout.utf8)) as! [String: Any]
        #expect((j2["sample"] as! String).hasPrefix("generated") && (j2["sample"] as! String).contains("1 byte of data"))
        let floors = j2["floors"] as! [String: Any]
        #expect(floors["dataBytes"] as? Int == 1)
        #expect((floors["firstSnapshot"] as! Double).isFinite && (floors["firstSnapshot"] as! Double) > 0)
        for rate in j2["rates"] as! [[String: Any]] { #expect((rate["allCores"] as! Double) > 0, "\(rate)") }
    }
}
