import Foundation

/// Paths to the repository's test fixtures (real captures from ../shared/fixtures, see CATALOG.tsv).
public enum Fixtures {
    /// The package root, found from this file's location.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let directory: URL = packageRoot.appendingPathComponent("Tests/Fixtures")

    /// `Tests/Fixtures/<relative>`.
    public static func url(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    public static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: url(relative)))
    }

    /// Every fixture file of one RPC folder, sorted by name (expected-facts JSON files excluded).
    public static func files(in rpc: String) throws -> [URL] {
        let dir = directory.appendingPathComponent(rpc)
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "xml" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }
}
