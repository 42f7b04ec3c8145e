import Foundation

/// Runs the built `strata` binary, as a user would, and captures what it prints.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var stdoutBytes: Data
    }

    /// The `strata` executable next to the test bundle (SwiftPM builds it because the test target depends on it).
    static let binary: String = {
        var candidates: [String] = []
        if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent().appendingPathComponent("strata").path) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("strata").path)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/strata").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }()

    var repo: String?
    var environment: [String: String] = [:]

    @discardableResult
    func run(_ args: [String], stdin: String? = nil, cwd: String? = nil) throws -> Result {
        try CLI.exec(CLI.binary, args, env: environment.merging(repo.map { ["STRATA_REPO": $0] } ?? [:]) { $1 }, stdin: stdin, cwd: cwd)
    }

    /// Runs any program; stdout and stderr go to files so that large outputs never block.
    static func exec(_ program: String, _ args: [String], env: [String: String] = [:], stdin: String? = nil, cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
        p.arguments = program.hasPrefix("/") ? args : [program] + args
        var e = ProcessInfo.processInfo.environment
        e["STRATA_REPO"] = nil
        e["NO_COLOR"] = "1"
        for (k, v) in env { e[k] = v }
        p.environment = e
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let tmp = FileManager.default.temporaryDirectory
        let outURL = tmp.appendingPathComponent("strata-out-\(UUID().uuidString)")
        let errURL = tmp.appendingPathComponent("strata-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        p.standardOutput = out
        p.standardError = err
        if let stdin {
            p.standardInput = FileHandle(forReadingAtPath: stdin)
        } else {
            p.standardInput = FileHandle.nullDevice
        }
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        let outData = try Data(contentsOf: outURL)
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self), stdoutBytes: outData)
    }
}

/// A temporary directory removed at deinit.
final class Scratch {
    let path: String

    init() {
        let template = FileManager.default.temporaryDirectory.appendingPathComponent("strata-e2e-XXXXXX").path
        var bytes = Array(template.utf8CString)
        path = String(cString: bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Real ext4 images, built with mke2fs from real files and changed with debugfs.
enum Ext4 {
    static var available: Bool { (try? CLI.exec("mke2fs", ["-V"]).status) == 0 }

    /// A deterministic tree of real system files of about `megabytes`.
    static func makeTree(_ dir: String, megabytes: Int, seed: Int) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var files: [(String, Int)] = []
        for root in ["/usr/share/doc", "/usr/lib/x86_64-linux-gnu", "/usr/share/perl", "/opt/swift/usr/lib/swift/linux"] {
            guard let e = FileManager.default.enumerator(atPath: root) else { continue }
            while let rel = e.nextObject() as? String {
                let p = root + "/" + rel
                guard let a = try? FileManager.default.attributesOfItem(atPath: p), a[.type] as? FileAttributeType == .typeRegular,
                      let size = a[.size] as? Int, size < 8 << 20 else { continue }
                files.append((p, size))
            }
        }
        files.sort { $0.0 < $1.0 }
        var rng = SplitMix(seed: UInt64(seed))
        files.shuffle(using: &rng)
        var total = 0
        for (i, (path, size)) in files.enumerated() where total + size <= megabytes << 20 {
            let sub = dir + "/d\(i % 13)"
            try? FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            if (try? FileManager.default.copyItem(atPath: path, toPath: sub + "/\(i)_" + URL(fileURLWithPath: path).lastPathComponent)) != nil {
                total += size
            }
        }
    }

    static func makeImage(_ image: String, megabytes: Int, tree: String) throws {
        _ = try CLI.exec("truncate", ["-s", "\(megabytes)M", image])
        let r = try CLI.exec("mke2fs", ["-q", "-F", "-t", "ext4", "-E", "root_owner=0:0", "-U", "5eedf00d-0000-4000-8000-000000000001", "-d", tree, image],
                             env: ["E2FSPROGS_FAKE_TIME": "1700000000"])
        guard r.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "mke2fs failed: \(r.stderr)"]) }
    }

    /// A valid filesystem change: adds files and removes some, on the unmounted image.
    static func mutate(_ image: String, scratch: Scratch, seed: Int) throws {
        var rng = SplitMix(seed: UInt64(seed))
        var cmds = "mkdir /added\(seed)\n"
        for i in 0..<12 {
            let f = scratch.file("new\(seed)_\(i).bin")
            let n = Int(rng.next() % 300_000) + 4096
            var data = [UInt8](repeating: 0, count: n)
            for j in 0..<n { data[j] = UInt8(truncatingIfNeeded: rng.next() >> 13) }
            _ = FileManager.default.createFile(atPath: f, contents: Data(data))
            cmds += "write \(f) /added\(seed)/f\(i).bin\n"
        }
        let listing = try CLI.exec("debugfs", ["-R", "ls -p /d1", image]).stdout
        let names = listing.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count > 5 && parts[5].first?.isNumber == true ? String(parts[5]) : nil
        }
        for name in names.prefix(6) { cmds += "rm /d1/\(name)\n" }
        let cmdFile = scratch.file("cmds\(seed)")
        try cmds.write(toFile: cmdFile, atomically: true, encoding: .utf8)
        let r = try CLI.exec("debugfs", ["-w", "-f", cmdFile, image])
        guard r.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "debugfs failed: \(r.stderr)"]) }
    }

    /// In-place random 4 KiB writes, as a VM disk sees them (the filesystem is no longer valid).
    static func scatterWrites(_ image: String, percent: Double, seed: Int) throws {
        let fh = try FileHandle(forUpdating: URL(fileURLWithPath: image))
        defer { try? fh.close() }
        let size = try fh.seekToEnd()
        var rng = SplitMix(seed: UInt64(seed))
        let blocks = Int(Double(size / 4096) * percent / 100)
        for _ in 0..<blocks {
            try fh.seek(toOffset: (rng.next() % (size / 4096)) * 4096)
            var page = [UInt8](repeating: 0, count: 4096)
            for j in 0..<4096 { page[j] = UInt8(truncatingIfNeeded: rng.next()) }
            fh.write(Data(page))
        }
    }

    static func fsckClean(_ image: String) throws -> Bool {
        try CLI.exec("e2fsck", ["-fn", image]).status == 0
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func sameFiles(_ a: String, _ b: String) throws -> Bool {
    try CLI.exec("cmp", ["-s", a, b]).status == 0
}

/// What a file holds once it contains `text`, or after `seconds` (whatever it holds then): for output that a running
/// process writes as it goes.
func waitForText(_ text: String, in path: String, seconds: Double = 10) -> String {
    var held = ""
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        held = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        if held.contains(text) { break }
        usleep(50_000)
    }
    return held
}
