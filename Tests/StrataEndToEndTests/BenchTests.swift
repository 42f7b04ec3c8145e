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

        let missing = try cli.run(["bench", "--image", s.file("nope.img"), "--seconds-per-measure", "0.01"])
        #expect(missing.status == 3 && missing.stderr.hasPrefix("strata: ") && missing.stderr.split(separator: "\n").count == 1,
                "\(missing.status) \(missing.stderr)")
        FileManager.default.createFile(atPath: s.file("empty.img"), contents: Data())
        let empty = try cli.run(["bench", "--image", s.file("empty.img"), "--seconds-per-measure", "0.01"])
        #expect(empty.status == 2 && empty.stderr.contains("holds no data"), "\(empty.status) \(empty.stderr)")
        let badLevel = try cli.run(["bench", "--level", "40"])
        #expect(badLevel.status == 2)
    }
}
