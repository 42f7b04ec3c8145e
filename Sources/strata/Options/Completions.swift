import ArgumentParser
import FoundationEssentials
import StrataCore

/// Shell completion of names from the repository in `$STRATA_REPO` (or after `-r`/`--repo` on the line):
/// snapshot ids, refs and `latest`; volume names; ref names. Errors complete nothing.
enum Completions {
    private static func repository(_ words: [String]) -> Repository? {
        var path = ProcessInfo.processInfo.environment["STRATA_REPO"]
        for (i, w) in words.enumerated() where (w == "-r" || w == "--repo") && i + 1 < words.count { path = words[i + 1] }
        guard let path, !path.isEmpty else { return nil }
        return try? Repository.open(at: path)
    }

    static let snapshots = CompletionKind.custom { words, _, _ in
        guard let repo = repository(words), let list = try? SnapshotCatalog(repo: repo).list().snapshots else { return ["latest"] }
        var out = ["latest"] + list.map(\.id.shortHex)
        out += ((try? RefStore(repo: repo).all()) ?? []).map(\.name)
        return out
    }

    static let volumes = CompletionKind.custom { words, _, _ in
        guard let repo = repository(words), let list = try? SnapshotCatalog(repo: repo).list().snapshots else { return [] }
        return Array(Set(list.map(\.manifest.volume))).sorted()
    }

    static let refs = CompletionKind.custom { words, _, _ in
        guard let repo = repository(words) else { return [] }
        return ((try? RefStore(repo: repo).all()) ?? []).map(\.name)
    }
}
