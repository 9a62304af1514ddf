import Crypto
import Foundation
import SupportStore
import Testing
import TestSupport

@Suite struct BundleFileStoreTests {
    func write(_ bytes: [UInt8], into store: BundleFileStore) throws -> (IncomingFile, String) {
        let file = try store.newIncomingFile()
        // In two pieces, as a body arrives.
        try bytes[..<(bytes.count / 2)].withUnsafeBytes { try file.write($0) }
        try bytes[(bytes.count / 2)...].withUnsafeBytes { try file.write($0) }
        return (file, try file.finish())
    }

    @Test func filesAreStoredOnceUnderTheirSHA256() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try BundleFileStore(directory: dir.path + "/store")
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let expected = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()

        let (first, sha) = try write(bytes, into: store)
        #expect(sha == expected && first.size == bytes.count)
        #expect(try store.place(first, sha256: sha) == true)
        first.discard()
        let (second, again) = try write(bytes, into: store)
        #expect(try store.place(second, sha256: again) == false)
        second.discard()

        #expect(store.path(sha256: sha) == dir.path + "/store/bundles/\(sha.prefix(2))/\(sha).tar.gz")
        #expect(FileManager.default.contents(atPath: store.path(sha256: sha)) == Data(bytes))
        // The temporary files are gone; only the stored file remains.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.incomingDirectory) == [])
        #expect(try FileManager.default.subpathsOfDirectory(atPath: store.bundlesDirectory).sorted() == [String(sha.prefix(2)), "\(sha.prefix(2))/\(sha).tar.gz"])
        #expect(throws: SupportStoreError.self) { try store.place(second, sha256: "../../etc/passwd") }
    }

    /// A placed file is fresh, however long its upload waited for verification (a link keeps the
    /// body's write time), so a prune running now leaves it to the row about to commit; a prune a
    /// crash interrupted (the file set aside under `.prune`) is undone or finished.
    @Test func aPlacedFileIsFreshAndAnInterruptedPruneIsSettled() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try BundleFileStore(directory: dir.path + "/store")
        let database = try SQLiteSupportDatabase(path: dir.path + "/support.db")
        try await database.migrate()
        let (file, sha) = try write((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }, into: store)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: file.path)
        #expect(try store.place(file, sha256: sha))
        file.discard()
        let placed = try #require(try FileManager.default.attributesOfItem(atPath: store.path(sha256: sha))[.modificationDate] as? Date)
        #expect(abs(placed.timeIntervalSinceNow) < 60)
        #expect(try await store.removeUnreferenced(database: database, grace: 600) == 0)
        #expect(FileManager.default.fileExists(atPath: store.path(sha256: sha)))

        // Old and unreferenced: it goes, and nothing is left aside.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: store.path(sha256: sha))
        #expect(try await store.removeUnreferenced(database: database, grace: 600) == 1)
        let bucket = store.bundlesDirectory + "/" + sha.prefix(2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: bucket) == [])

        // Set aside by a prune a crash interrupted: put back when its name is free (the next pass
        // decides), removed when the file is there again.
        FileManager.default.createFile(atPath: store.path(sha256: sha) + ".prune", contents: Data("bundle".utf8))
        #expect(try await store.removeUnreferenced(database: database, grace: 600) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: bucket) == ["\(sha).tar.gz"])
        FileManager.default.createFile(atPath: store.path(sha256: sha) + ".prune", contents: Data("bundle".utf8))
        _ = try await store.removeUnreferenced(database: database, grace: 600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: bucket) == ["\(sha).tar.gz"])
        await database.close()
    }

    @Test func abandonedUploadsAreSweptAndLiveOnesKept() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try BundleFileStore(directory: dir.path)
        let old = try store.newIncomingFile()
        let live = try store.newIncomingFile()
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: old.path)
        #expect(store.sweepIncoming(olderThan: 3600) == 1)
        #expect(!FileManager.default.fileExists(atPath: old.path) && FileManager.default.fileExists(atPath: live.path))
        live.discard()
    }
}
