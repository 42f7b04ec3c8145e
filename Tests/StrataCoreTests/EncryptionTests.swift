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
        // Into an empty repository every chunk is new; newBytes counts chunks only, as snap does (it counted the
        // map nodes too when objects moved as they are).
        let firstInShared = try SnapshotResolver(repo: shared).resolve(one.copied[0].target.hex)
        #expect(firstInShared.manifest.newBytes == copied.manifest.newBytes && copied.manifest.newBytes == copied.manifest.dataBytes)
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

    // MARK: What is not authenticated (config, a bundle's config and checksum, key files' parameters)

    @Test("a config edited to say 'none' does not open an encrypted repository as a plain one (the next snapshot would go to disk in the clear)")
    func configDowngrade() throws {
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), encryption: .aes256gcm, passphrase: "p")
        _ = try snap(repo, try EncryptionTests.markedImage(dir, "img", seed: 40))
        let text = String(decoding: try FileSystem.readFile(repo.configPath), as: UTF8.self)
        try Data(text.replacingOccurrences(of: "\"aes-256-gcm\"", with: "\"none\"").utf8).write(to: URL(fileURLWithPath: repo.configPath))
        #expect { try Repository.open(at: repo.path, passphrase: { "p" }) } throws: {
            ($0 as? StrataError)?.code == .damaged && "\($0)".contains("its config says it is not encrypted, but keys/ holds 1 key file(s)")
        }
    }

    /// Unpacks `bundle`, lets `change` edit the unpacked repository, and writes it back as a bundle with a valid
    /// checksum: what anyone who holds the bundle on its way can do.
    static func rewrite(_ bundle: String, to out: String, in dir: TemporaryDirectory, _ change: (String) throws -> Void) throws {
        let work = dir.file("unpacked-\(UUID().uuidString)")
        try Bundle.read(bundle, into: work, progress: nil)
        try change(work)
        try Bundle.write(directory: work, to: out, progress: nil)
    }

    @Test("a sealed bundle's config flipped to say its snapshots were not encrypted (checksum recomputed) still goes only into an encrypted repository; a plain repository's sealed bundle still goes anywhere")
    func bundleFlagIsSealed() throws {
        let dir = TemporaryDirectory()
        let enc = try Repository.create(at: dir.file("enc"), encryption: .aes256gcm, passphrase: "e")
        let s = try snap(enc, try EncryptionTests.markedImage(dir, "img", seed: 41))
        let bundle = dir.file("b.bundle")
        _ = try Bundle.export([s], from: enc, to: bundle, passphrase: "share")
        let forged = dir.file("forged.bundle")
        try Self.rewrite(bundle, to: forged, in: dir) { work in
            let config = work + "/config"
            let text = String(decoding: try FileSystem.readFile(config), as: UTF8.self)
            #expect(text.contains("\"snapshotsEncrypted\" : true"))
            try Data(text.replacingOccurrences(of: "\"snapshotsEncrypted\" : true", with: "\"snapshotsEncrypted\" : false").utf8)
                .write(to: URL(fileURLWithPath: config))
        }
        let plain = try Repository.create(at: dir.file("plain"))
        #expect { try Bundle.import(forged, into: plain, passphrase: { "share" }) } throws: {
            ($0 as? StrataError)?.code == .invalidArgument && "\($0)".contains("encrypted snapshots stay encrypted")
        }
        #expect(try SnapshotCatalog(repo: plain).list().snapshots.isEmpty && (try plain.packFilePaths()).isEmpty)
        // The same flag in an encrypted repository's own config means nothing to copy either.
        let text = String(decoding: try FileSystem.readFile(enc.configPath), as: UTF8.self)
        try Data(text.replacingOccurrences(of: "\n}", with: ",\n  \"snapshotsEncrypted\" : false\n}").utf8).write(to: URL(fileURLWithPath: enc.configPath))
        let reopened = try EncryptionTests.open(enc.path, "e")
        #expect(reopened.config.snapshotsEncrypted == false)
        #expect { try SnapshotCopier(from: reopened, to: plain).copy([s]) } throws: {
            "\($0)".contains("encrypted snapshots stay encrypted")
        }
        // A plain repository's sealed bundle says so in its sealed key material, and imports into a plain repository.
        let source = try Repository.create(at: dir.file("source"))
        let p = try snap(source, try EncryptionTests.markedImage(dir, "img2", seed: 42))
        let plainSealed = dir.file("p.bundle")
        _ = try Bundle.export([p], from: source, to: plainSealed, passphrase: "share")
        #expect(try Bundle.import(plainSealed, into: plain, passphrase: { "share" }).copied.count == 1)
        // One written before the key material said so (only its config does) goes only into an encrypted repository.
        let old = dir.file("old.bundle")
        try Self.rewrite(plainSealed, to: old, in: dir) { work in
            let staging = try EncryptionTests.open(work, "share")
            var keys = try #require(staging.keys)
            #expect(keys.snapshotsEncrypted == false)
            keys.snapshotsEncrypted = nil
            let file = try KeyFile.make(keys, passphrase: "share", n: 1 << 10)
            for name in try FileSystem.list(work + "/keys") { try FileSystem.remove(work + "/keys/" + name) }
            try KeyStore.save(file, directory: work + "/keys", tmp: work + "/tmp")
        }
        let plain2 = try Repository.create(at: dir.file("plain2"))
        #expect { try Bundle.import(old, into: plain2, passphrase: { "share" }) } throws: {
            "\($0)".contains("was written by an earlier strata, which did not seal whether its snapshots were encrypted")
        }
        let enc2 = try Repository.create(at: dir.file("enc2"), encryption: .chacha20poly1305, passphrase: "x")
        #expect(try Bundle.import(old, into: enc2, passphrase: { "share" }).copied.count == 1)
    }

    @Test("an unsealed bundle in place of a sealed one is refused when a bundle passphrase was given; a bundle with two key files is damaged")
    func bundleSubstitutes() throws {
        let dir = TemporaryDirectory()
        let source = try Repository.create(at: dir.file("source"))
        let s = try snap(source, try EncryptionTests.markedImage(dir, "img", seed: 43))
        let unsealed = dir.file("u.bundle")
        _ = try Bundle.export([s], from: source, to: unsealed, passphrase: nil)
        let target = try Repository.create(at: dir.file("t"), encryption: .aes256gcm, passphrase: "t")
        #expect { try Bundle.import(unsealed, into: target, passphrase: { "share" }, expectSealed: true) } throws: {
            ($0 as? StrataError)?.code == .refused && "\($0)".contains("is not sealed, but a bundle passphrase was given")
        }
        #expect(try SnapshotCatalog(repo: target).list().snapshots.isEmpty && (try FileSystem.list(target.tmpPath)).isEmpty)
        #expect(try Bundle.import(unsealed, into: target, passphrase: nil).copied.count == 1)

        let sealed = dir.file("s.bundle")
        _ = try Bundle.export([s], from: source, to: sealed, passphrase: "share")
        let twoKeys = dir.file("two.bundle")
        try Self.rewrite(sealed, to: twoKeys, in: dir) { work in
            let staging = try EncryptionTests.open(work, "share")
            try KeyStore.save(try KeyFile.make(try #require(staging.keys), passphrase: "other", n: 1 << 10),
                              directory: work + "/keys", tmp: work + "/tmp")
        }
        #expect { try Bundle.import(twoKeys, into: target, passphrase: { "share" }) } throws: {
            ($0 as? StrataError)?.code == .damaged && "\($0)".contains("more than one key file")
        }
    }

    @Test("key files asking for more scrypt work than allowed are skipped cheaply, and the cheapest are tried first; unreadable ones are named")
    func keyFileCosts() throws {
        #expect(KeyFile.acceptable(n: 1 << 15, r: 8, p: 1) && KeyFile.acceptable(n: 1 << 18, r: 8, p: 2))
        #expect(!KeyFile.acceptable(n: 1 << 20, r: 8, p: 4) && !KeyFile.acceptable(n: 1 << 22, r: 32, p: 16)
                && !KeyFile.acceptable(n: 1 << 19, r: 8, p: 1) && !KeyFile.acceptable(n: 1 << 18, r: 8, p: 3))
        let dir = TemporaryDirectory()
        let repo = try Repository.create(at: dir.file("r"), encryption: .aes256gcm, passphrase: "good")
        var good = try KeyStore(repo: repo).list()[0]
        // A planted key file, oldest by its date, asking for 16 GiB: skipped without being derived.
        var hostile = good
        hostile.id = "0000000000000001"
        hostile.createdAt = "2000-01-01T00:00:00.000Z"
        hostile.n = 1 << 22
        hostile.r = 32
        hostile.p = 16
        try Data(try JSONEncoder().encode(hostile)).write(to: URL(fileURLWithPath: repo.keysPath + "/" + hostile.id))
        // One asking for the most allowed is tried after the cheap, real one.
        var costly = good
        costly.id = "0000000000000002"
        costly.createdAt = "2000-01-01T00:00:00.000Z"
        costly.n = 1 << 18
        costly.p = 2
        try Data(try JSONEncoder().encode(costly)).write(to: URL(fileURLWithPath: repo.keysPath + "/" + costly.id))
        #expect(try KeyStore(repo: repo).list().map(\.id) == [good.id, costly.id, hostile.id])
        let clock = ContinuousClock.now
        #expect(try Repository.open(at: repo.path, passphrase: { "good" }).openedKeyID == good.id)
        #expect(clock.duration(to: .now) < .seconds(20))
        // Only unreadable key files: they are named, not "no key files".
        for f in try FileSystem.list(repo.keysPath) where !f.hasPrefix(".") { try FileSystem.remove(repo.keysPath + "/" + f) }
        good.id = "0000000000000003"
        try Data("not json".utf8).write(to: URL(fileURLWithPath: repo.keysPath + "/" + good.id))
        #expect { try Repository.open(at: repo.path, passphrase: { "good" }) } throws: {
            "\($0)".contains("none of its key files can be read: keys/0000000000000003: not a key file")
        }
    }
}

