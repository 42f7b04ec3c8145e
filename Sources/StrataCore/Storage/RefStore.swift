/// Refs: git-style names for snapshots, one file per name under `refs/tags/`, holding the snapshot id.
public struct RefStore {
    let repo: Repository

    public init(repo: Repository) { self.repo = repo }

    /// Checks a ref name the way git checks tag names, and refuses anything that could leave `refs/tags/`.
    public static func validate(_ name: String) throws {
        func refuse(_ why: String) -> StrataError {
            StrataError(.invalidArgument, "ref name '\(Labels.printable(name))' is not valid: \(why)")
        }
        guard !name.isEmpty else { throw refuse("it is empty") }
        guard name.utf8.count <= 200 else { throw refuse("it is longer than 200 bytes") }
        guard name != "latest" && name != "@" else { throw refuse("'\(name)' is reserved") }
        for scalar in name.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7f { throw refuse("it contains a control character") }
            if " ~^:?*[\\".unicodeScalars.contains(scalar) { throw refuse("it contains '\(scalar)'") }
        }
        if name.hasPrefix("/") || name.hasSuffix("/") { throw refuse("it starts or ends with '/'") }
        if name.contains("//") { throw refuse("it contains '//'") }
        if name.contains("..") { throw refuse("it contains '..'") }
        if name.contains("@{") { throw refuse("it contains '@{'") }
        if name.hasSuffix(".") { throw refuse("it ends with '.'") }
        for component in name.split(separator: "/") {
            if component.hasPrefix(".") { throw refuse("a component starts with '.'") }
            if component.hasSuffix(".lock") { throw refuse("a component ends with '.lock'") }
        }
    }

    private func path(_ name: String) -> String { FileSystem.join(repo.refsPath, name) }

    /// The snapshot a ref names, or nil when there is no such ref.
    public func target(of name: String) throws -> ObjectID? {
        guard (try? Self.validate(name)) != nil else { return nil }
        let p = path(name)
        guard let st = try wrap(try FileSystem.linkStatus(p), "cannot read ref \(name)"), st.isRegularFile else { return nil }
        let bytes = try wrap(try FileSystem.readFile(p, limit: 4096), "cannot read ref \(name)")
        var text = Substring(String(decoding: bytes, as: UTF8.self))
        while text.first?.isWhitespace == true { text = text.dropFirst() }
        while text.last?.isWhitespace == true { text = text.dropLast() }
        guard let id = ObjectID(hex: String(text)) else {
            throw StrataError.corrupt("ref '\(name)' is damaged: it does not hold a snapshot id")
        }
        return id
    }

    /// Every ref with its target, sorted by name. Unreadable refs are returned with a nil target.
    public func all() throws -> [(name: String, target: ObjectID?)] {
        var out: [(String, ObjectID?)] = []
        func visit(_ dir: String, prefix: String) throws {
            for entry in try wrap(try FileSystem.list(dir), "cannot list \(dir)") {
                let full = FileSystem.join(dir, entry)
                let name = prefix.isEmpty ? entry : prefix + "/" + entry
                guard let st = try wrap(try FileSystem.linkStatus(full), "cannot read \(full)") else { continue }
                if st.isDirectory {
                    try visit(full, prefix: name)
                } else if st.isRegularFile {
                    do {
                        // nil: removed since it was listed (an rm or ref rm running beside this listing).
                        if let t = try target(of: name) { out.append((name, t)) }
                    } catch {
                        out.append((name, nil))
                    }
                }
            }
        }
        try visit(repo.refsPath, prefix: "")
        return out.sorted { $0.0 < $1.0 }
    }

    /// Points a ref at a snapshot (creating or replacing it) durably.
    public func set(_ name: String, to id: ObjectID) throws {
        try Self.validate(name)
        let p = path(name)
        // A name cannot be both a ref and a folder of refs (as in git): say which one is in the way.
        let components = name.split(separator: "/").map(String.init)
        for k in 1..<max(components.count, 1) {
            let outer = components[..<k].joined(separator: "/")
            if let st = try? FileSystem.linkStatus(path(outer)), !st.isDirectory {
                throw StrataError(.invalidArgument, "ref '\(name)' cannot be made: ref '\(outer)' exists, and a name cannot be both a ref and a folder of refs")
            }
        }
        if let st = try? FileSystem.linkStatus(p), st.isDirectory {
            // Folders left empty by versions that did not remove them are no refs.
            Self.pruneEmptyFolders(p)
            removeEmptyFolders(from: FileSystem.directoryName(p))
            if FileSystem.exists(p) {
                throw StrataError(.invalidArgument, "ref '\(name)' cannot be made: refs named '\(name)/…' exist, and a name cannot be both a ref and a folder of refs")
            }
        }
        var dir = repo.refsPath
        for component in components.dropLast() {
            dir = FileSystem.join(dir, component)
            try wrap(try FileSystem.makeDirectory(dir), "cannot create \(dir)")
        }
        try wrap(try AtomicFile.write(Array((id.hex + "\n").utf8), to: p, tmpDirectory: repo.tmpPath),
                 "cannot write ref \(name)")
    }

    /// Removes a ref durably.
    public func remove(_ name: String) throws {
        try Self.validate(name)
        let p = path(name)
        guard let st = try? FileSystem.linkStatus(p), !st.isDirectory else {
            throw StrataError(.notFound, "ref '\(name)' does not exist")
        }
        try wrap({
            try FileSystem.remove(p)
            try FileSystem.syncDirectory(FileSystem.directoryName(p))
        }(), "cannot remove ref \(name)")
        removeEmptyFolders(from: FileSystem.directoryName(p))
    }

    /// Removes the folders under and at `dir` that hold no file at any depth.
    private static func pruneEmptyFolders(_ dir: String) {
        for entry in (try? FileSystem.list(dir)) ?? [] {
            let full = FileSystem.join(dir, entry)
            if let st = try? FileSystem.linkStatus(full), st.isDirectory { pruneEmptyFolders(full) }
        }
        if (try? FileSystem.removeDirectory(dir)) != nil { try? FileSystem.syncDirectory(FileSystem.directoryName(dir)) }
    }

    /// Removes `directory` and the folders of refs above it that are left empty (a ref's folder goes with its last
    /// ref, so that its name can be a ref again); stops at the first that is not empty.
    private func removeEmptyFolders(from directory: String) {
        var dir = directory
        while dir.hasPrefix(repo.refsPath + "/") {
            guard (try? FileSystem.removeDirectory(dir)) != nil else { return }
            dir = FileSystem.directoryName(dir)
            try? FileSystem.syncDirectory(dir)
        }
    }
}

import FoundationEssentials
