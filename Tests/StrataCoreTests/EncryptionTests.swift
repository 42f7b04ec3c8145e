import Crypto
import Foundation
import Testing
@testable import StrataCore

@Suite("Encryption, keys, copy and bundles")
struct EncryptionTests {
    static let marker = Array("STRATA-PLAINTEXT-MARKER-7c1f".utf8)

    /// An image whose data and labels hold a known marker string many times.
    static func markedImage(_ dir: TemporaryDirectory, _ name: String, seed: UInt64, extra: Int = 0) throws -> String {
        var rng = SeededRandom(seed: seed)
        var bytes: [UInt8] = []
        while bytes.count < (2 << 20) + extra {
            bytes += marker
            bytes += rng.textLike(Int(rng.next() % 3000))
        }
        return try dir.write(name, bytes)
    }

    static func open(_ path: String, _ passphrase: String) throws -> Repository {
        try Repository.open(at: path, passphrase: { passphrase })
    }

    /// Every byte of every file under `dir`.
    static func allFiles(_ dir: String) throws -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        let e = FileManager.default.enumerator(atPath: dir)!
        while let rel = e.nextObject() as? String {
            let p = dir + "/" + rel
            if (try? FileSystem.linkStatus(p))??.isRegularFile == true { out.append((rel, try FileSystem.readFile(p))) }
        }
        return out
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var i = 0
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first && Array(haystack[i..<(i + needle.count)]) == needle { return true }
            i += 1
        }
        return false
    }

    @Test("no plaintext of the image, its tags or its description reaches the repository", arguments: [ObjectSealer.Scheme.aes256gcm, .chacha20poly1305])
    func noPlaintext(scheme: ObjectSealer.Scheme) throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), encryption: scheme, passphrase: "pw one")
        let img = try Self.markedImage(dir, "img", seed: 1)
        let labelled = String(decoding: Self.marker, as: UTF8.self)
        let s = try Snapshotter(repo: repo).run(SnapshotRequest(source: img, volume: "v", description: "about \(labelled)", tags: ["k": labelled])).snapshot
        try SnapshotCatalog(repo: repo).tag(s, set: ["later": labelled], remove: [])
        // A failed snapshot leaves drafts and packs behind: they must be sealed too.
        FaultInjection.install(.init(pathPrefix: repo.path + "/index", call: "write", errno: ENOSPC, allowance: 0))
        _ = try? Snapshotter(repo: repo).run(SnapshotRequest(source: try Self.markedImage(dir, "img2", seed: 2), volume: "v"))
        FaultInjection.remove(pathPrefix: repo.path + "/index")
        for (name, bytes) in try Self.allFiles(repo.path) {
            #expect(!Self.contains(bytes, Self.marker), "\(name) holds plaintext")
            #expect(!Self.contains(bytes, Array("about ".utf8)), "\(name) holds the description")
        }
        // And it all reads back.
        let reopened = try Self.open(repo.path, "pw one")
        #expect(try restoreBytes(reopened, try SnapshotResolver(repo: reopened).resolve(s.id.hex), in: dir) == (try FileSystem.readFile(img)))
        #expect(try SnapshotCatalog(repo: reopened).info(s).tags["later"] == labelled)
        #expect(try Checker(repo: reopened).run(readData: true).isHealthy)
    }

    @Test("several passphrases open one repository; a wrong one is one clear error; the last key stays")
    func keys() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), encryption: .aes256gcm, passphrase: "first")
        let s = try snap(repo, try Self.markedImage(dir, "img", seed: 3))
        let store = KeyStore(repo: repo)
        let second = try store.add(passphrase: "second")
        for pw in ["first", "second"] {
            let r = try Self.open(repo.path, pw)
            #expect(try SnapshotResolver(repo: r).resolve(s.id.hex).id == s.id)
        }
        #expect { try Self.open(repo.path, "third") } throws: { error in
            guard let e = error as? StrataError else { return false }
            return e.code == .authentication && e.message.hasPrefix("wrong passphrase")
        }
        #expect { try Repository.open(at: repo.path) } throws: { ($0 as? StrataError)?.code == .authentication }
        // passwd: the key that opened the repository is replaced.
        let viaSecond = try Self.open(repo.path, "second")
        try KeyStore(repo: viaSecond).changePassphrase(to: "second, changed")
        #expect(throws: StrataError.self) { try Self.open(repo.path, "second") }
        _ = try Self.open(repo.path, "second, changed")
        // Removing keys: never the last.
        let all = try store.list()
        #expect(all.count == 2 && !all.contains { $0.id == second })
        try store.remove(all[0].id)
        #expect { try store.remove(all[1].id) } throws: { ($0 as? StrataError)?.code == .refused }
        _ = try Self.open(repo.path, "second, changed")
    }

    @Test("a key change waits for gc's exclusive lock (its draft is in tmp/, which gc empties), then completes")
    func keyChangeWaitsForGC() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), encryption: .aes256gcm, passphrase: "first")
        var gcLock: RepositoryLock? = try repo.lock(.exclusive)
        let done = DispatchSemaphore(value: 0)
        let added = ErrorBox()
        DispatchQueue.global().async {
            do { _ = try KeyStore(repo: repo).add(passphrase: "second", cost: 1 << 10) } catch { added.set(error) }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 0.3) == .timedOut, "key add did not wait for the exclusive lock")
        withExtendedLifetime(gcLock) {}
        gcLock = nil
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(!added.hasError)
        _ = try Self.open(repo.path, "second")
    }

    @Test("a tampered frame, manifest or index is an authentication failure that fsck names")
    func tampering() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), encryption: .aes256gcm, passphrase: "pw")
        let s = try snap(repo, try Self.markedImage(dir, "img", seed: 4))
        let pack = try DamageTests.packs(repo)[0]
        var bytes = try FileSystem.readFile(pack)
        bytes[PackTOC.headerSize + 40] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: pack))
        let report = try Checker(repo: repo).run(readData: true)
        #expect(report.damagedSnapshots == [s.id])
        #expect(report.problems.contains { $0.message.contains("does not authenticate") })
        #expect { try Restorer(repo: repo).run(s, to: dir.file("out")) } throws: { ($0 as? StrataError)?.code == .damaged }
    }

    @Test("keyed ids: the same image gets different chunk ids in repositories with different keys, equal with shared keys")
    func keyedIDs() throws {
        let dir = TemporaryDirectory()
        let img = try Self.markedImage(dir, "img", seed: 5)
        let a = try Repository.create(at: dir.file("a"), encryption: .aes256gcm, passphrase: "a")
        let b = try Repository.create(at: dir.file("b"), encryption: .aes256gcm, passphrase: "b")
        let c = try Repository.create(at: dir.file("c"), encryption: .chacha20poly1305, passphrase: "c", chunkingFrom: a)
        let p = try Repository.create(at: dir.file("p"))
        let ids = try [a, b, c, p].map { repo in Set(try repo.entries(of: try snap(repo, img)).map(\.id)) }
        #expect(ids[0].isDisjoint(with: ids[1]))
        #expect(ids[0] == ids[2])
        #expect(ids[0].isDisjoint(with: ids[3]))
        #expect(a.sharesChunking(with: c) && !a.sharesChunking(with: b) && !a.sharesChunking(with: p))
        #expect(throws: StrataError.self) { try Repository.create(at: dir.file("x"), encryption: .aes256gcm, passphrase: "x", chunkingFrom: p) }
    }

    @Test("copy: plain to encrypted is complete; encrypted to encrypted with shared chunking moves only new data")
    func copies() throws {
        let dir = TemporaryDirectory()
        let plain = try Repository.create(at: dir.file("plain"))
        let first = try snap(plain, try Self.markedImage(dir, "img", seed: 6))
        let second = try snap(plain, try Self.markedImage(dir, "img", seed: 6, extra: 200_000))
        try SnapshotCatalog(repo: plain).tag(first, set: ["later": "yes"], remove: [])

        let enc = try Repository.create(at: dir.file("enc"), encryption: .aes256gcm, passphrase: "e")
        let full = try SnapshotCopier(from: plain, to: enc).copy([first])
        // Encrypted snapshots stay encrypted: never copied into a plain repository.
        let plainTarget = try Repository.create(at: dir.file("plain-target"))
        let encrypted = try SnapshotResolver(repo: enc).resolve(full.copied[0].target.hex)
        #expect { try SnapshotCopier(from: enc, to: plainTarget).copy([encrypted]) } throws: {
            ($0 as? StrataError)?.code == .invalidArgument && "\($0)".contains("encrypted snapshots stay encrypted")
        }
        #expect(try SnapshotCatalog(repo: plainTarget).list().snapshots.isEmpty && (try plainTarget.packFilePaths()).isEmpty)
        #expect(!full.incremental)
        let copied = try SnapshotResolver(repo: enc).resolve(full.copied[0].target.hex)
        #expect(try restoreBytes(enc, copied, in: dir) == (try restoreBytes(plain, first, in: dir)))
        #expect(copied.manifest.createdAt == first.manifest.createdAt && copied.manifest.description == first.manifest.description)
        #expect(try SnapshotCatalog(repo: enc).info(copied).tags["later"] == "yes")

        // A second encrypted repository sharing chunking: the first copy moves everything, the second only new data.
        let shared = try Repository.create(at: dir.file("shared"), encryption: .chacha20poly1305, passphrase: "s", chunkingFrom: enc)
        let one = try SnapshotCopier(from: enc, to: shared).copy([copied])
        #expect(one.incremental)
        let later = try SnapshotCopier(from: plain, to: enc).copy([second])
        let laterSnap = try SnapshotResolver(repo: enc).resolve(later.copied[0].target.hex)
        let two = try SnapshotCopier(from: enc, to: shared).copy([laterSnap])
        #expect(two.incremental)
        #expect(two.bytesCopied < one.bytesCopied / 4, "second copy moved \(two.bytesCopied) of \(one.bytesCopied)")
        #expect(two.bytesCopied >= 200_000)
        let inShared = try SnapshotResolver(repo: shared).resolve(two.copied[0].target.hex)
        #expect(try restoreBytes(shared, inShared, in: dir) == (try FileSystem.readFile(dir.file("img"))))
        #expect(try Checker(repo: shared).run(readData: true).isHealthy)
        // Re-keyed: a repository with its own keys gets a complete copy.
        let rekeyed = try Repository.create(at: dir.file("rekeyed"), encryption: .aes256gcm, passphrase: "r")
        let three = try SnapshotCopier(from: enc, to: rekeyed).copy([laterSnap])
        #expect(!three.incremental && three.bytesCopied >= Int64(laterSnap.manifest.dataBytes) / 2)
    }

    @Test("export and import round-trip; a truncated or tampered bundle is refused and adds nothing")
    func bundles() throws {
        let dir = TemporaryDirectory()
        let enc = try Repository.create(at: dir.file("enc"), encryption: .aes256gcm, passphrase: "e")
        let s = try snap(enc, try Self.markedImage(dir, "img", seed: 7))
        #expect { try Bundle.export([s], from: enc, to: dir.file("plain.bundle"), passphrase: nil) } throws: { ($0 as? StrataError)?.code == .invalidArgument }
        let bundle = dir.file("b.bundle")
        _ = try Bundle.export([s], from: enc, to: bundle, passphrase: "share")
        #expect(!Self.contains(try FileSystem.readFile(bundle), Self.marker))
        #expect(Self.contains(try FileSystem.readFile(bundle), Array("\"snapshotsEncrypted\" : true".utf8)))
        // Encrypted snapshots stay encrypted: not into a plain repository (refused before the passphrase is asked).
        let plain = try Repository.create(at: dir.file("plain"))
        #expect { try Bundle.import(bundle, into: plain, passphrase: { Issue.record("asked"); return "share" }) } throws: {
            ($0 as? StrataError)?.code == .invalidArgument && "\($0)".contains("encrypted snapshots stay encrypted")
        }
        #expect(try SnapshotCatalog(repo: plain).list().snapshots.isEmpty && (try FileSystem.list(plain.tmpPath)).isEmpty)
        #expect(try plain.packFilePaths().isEmpty)
        let target = try Repository.create(at: dir.file("target"), encryption: .chacha20poly1305, passphrase: "t")
        #expect { try Bundle.import(bundle, into: target, passphrase: { "wrong" }) } throws: { ($0 as? StrataError)?.code == .authentication }
        let r = try Bundle.import(bundle, into: target, passphrase: { "share" })
        let imported = try SnapshotResolver(repo: target).resolve(r.copied[0].target.hex)
        #expect(try restoreBytes(target, imported, in: dir) == (try FileSystem.readFile(dir.file("img"))))
        // Damage: truncation and a flipped byte.
        let original = try FileSystem.readFile(bundle)
        for (name, damaged) in [("truncated", Array(original.prefix(original.count - 100))), ("flipped", { var b = original; b[b.count / 2] ^= 1; return b }())] {
            let path = try dir.write(name, damaged)
            #expect(throws: StrataError.self, "\(name)") { try Bundle.import(path, into: target, passphrase: { "share" }) }
        }
        #expect(try SnapshotCatalog(repo: target).list().snapshots.count == 1)
        #expect(try FileSystem.list(target.tmpPath).isEmpty)
        #expect(!Bundle.isLayoutPath("../config") && !Bundle.isLayoutPath("packs/ab/../../x") && Bundle.isLayoutPath("config"))
    }

    @Test("a bundle holds a repository of the exporter's format, and imports into either format")
    func bundleFormats() throws {
        let dir = TemporaryDirectory()
        let old = try Repository.create(at: dir.file("old"), format: 1)
        let s = try snap(old, try Self.markedImage(dir, "img", seed: 8))
        let bundle = dir.file("old.bundle")
        _ = try Bundle.export([s], from: old, to: bundle, passphrase: nil)
        #expect(Self.contains(try FileSystem.readFile(bundle), Array("\"format\" : 1".utf8)))
        for format in [1, 2] {
            let target = try Repository.create(at: dir.file("target\(format)"), format: format)
            let r = try Bundle.import(bundle, into: target, passphrase: nil)
            let imported = try SnapshotResolver(repo: target).resolve(r.copied[0].target.hex)
            #expect(try restoreBytes(target, imported, in: dir) == (try FileSystem.readFile(dir.file("img"))))
            #expect(try Checker(repo: target).run(readData: true).isHealthy)
        }
        // A sealed bundle of a plain repository says its snapshots were not encrypted: it imports into a plain one.
        let sealed = dir.file("sealed.bundle")
        _ = try Bundle.export([s], from: old, to: sealed, passphrase: "p")
        #expect(Self.contains(try FileSystem.readFile(sealed), Array("\"snapshotsEncrypted\" : false".utf8)))
        let plain = try Repository.create(at: dir.file("plain"))
        let r = try Bundle.import(sealed, into: plain, passphrase: { "p" })
        #expect(try restoreBytes(plain, try SnapshotResolver(repo: plain).resolve(r.copied[0].target.hex), in: dir) == (try FileSystem.readFile(dir.file("img"))))
    }

    @Test("packs larger than the pieces a bundle is streamed in travel whole, both ways")
    func bundleStreamsLargeFiles() throws {
        let dir = TemporaryDirectory()
        let source = try Repository.create(at: dir.file("source"))
        var rng = SeededRandom(seed: 31)
        let image = rng.bytes(3 * Bundle.pieceSize + 12_345)  // incompressible: one pack of over three pieces
        let s = try snap(source, try dir.write("img", image))
        let largest = try source.packFilePaths().map { try FileSystem.status($0)?.size ?? 0 }.max() ?? 0
        #expect(largest > Int64(3 * Bundle.pieceSize))
        let bundle = dir.file("big.bundle")
        _ = try Bundle.export([s], from: source, to: bundle, passphrase: nil)
        let target = try Repository.create(at: dir.file("target"))
        let r = try Bundle.import(bundle, into: target, passphrase: nil)
        let imported = try SnapshotResolver(repo: target).resolve(r.copied[0].target.hex)
        #expect(try restoreBytes(target, imported, in: dir) == image)
        #expect(try Checker(repo: target).run(readData: true).isHealthy)
        // Cut inside the large pack's entry (checksum recomputed): refused, nothing added.
        let original = try FileSystem.readFile(bundle)
        let body = Array(original.prefix(original.count / 2))
        let cut = try dir.write("cut.bundle", body + ObjectID.sha256(body).bytes)
        let fresh = try Repository.create(at: dir.file("fresh"))
        #expect { try Bundle.import(cut, into: fresh, passphrase: nil) } throws: { ($0 as? StrataError)?.code == .damaged }
        #expect(try SnapshotCatalog(repo: fresh).list().snapshots.isEmpty)
        #expect(try FileSystem.list(fresh.tmpPath).isEmpty)
    }
}

@Suite("Keyed ids")
struct KeyedIDTests {
    @Test("the precomputed HMAC equals swift-crypto's HMAC-SHA256")
    func hmacMatches() {
        var rng = SeededRandom(seed: 9)
        let keys = KeyMaterial(encryption: Data(rng.bytes(32)), id: Data(rng.bytes(32)), cut: Data(rng.bytes(16)))
        let identity = IdentityScheme(keys: keys)
        for n in [0, 1, 32, 63, 64, 65, 128, 4096, 100_000] {
            let message = rng.bytes(n)
            let expected = HMAC<SHA256>.authenticationCode(for: message, using: keys.idKey).withUnsafeBytes { ObjectID(bytes: $0.baseAddress!) }
            #expect(identity.id(message) == expected, "length \(n)")
        }
    }
}

@Suite("Hostile bundles and key files")
struct HostileInputTests {
    /// A bundle with its checksum recomputed after mutation, so that the parser and the staging checks meet hostile
    /// but well-formed-looking input. Import must fail with a typed error or import only verified data.
    @Test("mutated bundles with a valid checksum are refused or verified, never a crash", arguments: [21, 22, 23])
    func mutatedBundles(seed: UInt64) throws {
        let dir = TemporaryDirectory()
        let source = try Repository.create(at: dir.file("source"))
        var rng = SeededRandom(seed: seed)
        let image = rng.textLike(300_000)
        let s = try snap(source, try dir.write("img", image))
        let bundle = dir.file("b")
        _ = try Bundle.export([s], from: source, to: bundle, passphrase: nil)
        let original = try FileSystem.readFile(bundle)
        let target = try Repository.create(at: dir.file("target"))
        for attempt in 0..<25 {
            var body = Array(original.dropLast(32))
            switch rng.next() % 3 {
            case 0: body[16 + Int(rng.next() % UInt64(body.count - 16))] ^= UInt8(1 << (rng.next() % 8))
            case 1: body = Array(body.prefix(16 + Int(rng.next() % UInt64(body.count - 16))))
            default:
                let at = 16 + Int(rng.next() % UInt64(body.count - 16))
                body.insert(contentsOf: rng.bytes(Int(rng.next() % 40) + 1), at: at)
            }
            let path = try dir.write("m\(attempt)", body + ObjectID.sha256(body).bytes)
            do {
                let r = try Bundle.import(path, into: target, passphrase: { "x" })
                // Whatever was imported must restore to the original bytes.
                for pair in r.copied {
                    #expect(try restoreBytes(target, try SnapshotResolver(repo: target).resolve(pair.target.hex), in: dir) == image)
                }
            } catch is StrataError {
            } catch {
                Issue.record("attempt \(attempt): untyped error \(error)")
            }
        }
        #expect(try Checker(repo: target).run(readData: true).isHealthy)
        #expect(try FileSystem.list(target.tmpPath).isEmpty)
    }

    @Test("damaged or foreign key files are skipped; a good one still opens the repository")
    func mutatedKeyFiles() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), encryption: .aes256gcm, passphrase: "good")
        let good = try KeyStore(repo: repo).list()[0]
        var rng = SeededRandom(seed: 30)
        var json = try FileSystem.readFile(repo.keysPath + "/" + good.id)
        for i in 0..<20 {
            var m = json
            m[Int(rng.next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: rng.next())
            try Data(m).write(to: URL(fileURLWithPath: repo.keysPath + "/" + String(format: "%016x", i + 1)))
        }
        // A key file with absurd scrypt parameters must not stop the others.
        var file = good
        file.id = "ffffffffffffffff"
        file.n = 3
        let encoder = JSONEncoder()
        json = Array(try encoder.encode(file))
        try Data(json).write(to: URL(fileURLWithPath: repo.keysPath + "/ffffffffffffffff"))
        _ = try Repository.open(at: repo.path, passphrase: { "good" })
        #expect { try Repository.open(at: repo.path, passphrase: { "bad" }) } throws: { $0 is StrataError }
    }
}

