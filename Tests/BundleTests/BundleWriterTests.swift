import Foundation
import Junos
import Testing
import TestSupport
@testable import Bundle

@Suite struct BundleWriterTests {
    @Test func cleanupRemovesOnlyTemporaryFilesNobodyHoldsTheLockOf() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let live = dir.url.appendingPathComponent(".r1-X-20251125-020000.tar.gz.4242-ab.tmp").path
        let dead = dir.url.appendingPathComponent(".r2-X-20251125-020000.tar.gz.4243-cd.tmp").path
        // A writer in the middle of a write holds its file's lock, as BundleWriter does.
        let writer = open(live, O_WRONLY | O_CREAT | O_EXCL, 0o640)
        #expect(writer >= 0 && flock(writer, LOCK_EX) == 0)
        defer { close(writer) }
        FileManager.default.createFile(atPath: dead, contents: Data([0x1f, 0x8b]))
        // An hour old: an age limit alone would take the live one too.
        for path in [live, dead] {
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: path)
        }
        let cleaner = BundleWriter(directory: dir.url, key: Sample.key)
        cleaner.removeStaleTemporaryFiles(olderThan: 3600)
        #expect(try dir.names() == [live].map { URL(fileURLWithPath: $0).lastPathComponent })
        FileManager.default.createFile(atPath: dead, contents: Data([0x1f, 0x8b]))
        cleaner.removeAbandonedTemporaryFiles()
        #expect(try dir.names() == [live].map { URL(fileURLWithPath: $0).lastPathComponent })
        // The writer's own write still completes beside a cleaner that ran meanwhile.
        let url = try BundleWriter(directory: dir.url, key: Sample.key).write(try Sample.contents())
        #expect(try dir.names().sorted() == [URL(fileURLWithPath: live).lastPathComponent, url.lastPathComponent].sorted())
        close(writer)
        cleaner.removeAbandonedTemporaryFiles()
        #expect(try dir.names() == [url.lastPathComponent])
    }

    @Test func aWritersTemporaryFileIsLockedFromItsCreation() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, fd) = try BundleWriter.createLockedTemporary(dir: dir.path, base: "r1.tar.gz")
        defer { close(fd) }
        var info = stat()
        #expect(fstat(fd, &info) == 0 && info.st_nlink == 1)
        #expect(BundleFileName.isTemporary(URL(fileURLWithPath: path).lastPathComponent))
        // Held: a cleaner leaves it.
        BundleWriter.removeIfAbandoned(path)
        #expect(FileManager.default.fileExists(atPath: path))
    }
    @Test func roundTripKeepsEverythingTheCollectorHandedOver() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let contents = try Sample.contents()
        let url = try BundleWriter(directory: dir.url, key: Sample.key).write(contents)
        #expect(url.lastPathComponent == "baku-JN1249018AFB-20251125-020000.tar.gz")

        let bundle = try BundleReader().read(contentsOf: url)
        #expect(bundle.manifest.formatVersion == 1)
        #expect(bundle.manifest.bundleId == contents.bundleId)
        #expect(bundle.contents.device == contents.device)
        #expect(bundle.contents.agent == contents.agent)
        #expect(bundle.contents.trigger == .scheduled)
        #expect(bundle.contents.started == UTCTime.truncated(contents.started))
        #expect(abs(bundle.contents.finished.timeIntervalSince(contents.finished)) < 0.001)
        #expect(bundle.contents.outcomes == contents.outcomes)
        #expect(bundle.contents.rawReplies == contents.rawReplies)
        #expect(bundle.contents.facts == contents.facts)
        #expect(bundle.factsDecodingError == nil)
        #expect(bundle.contents.log == contents.log)
        #expect(bundle.signer == Sample.key.publicKey)
        #expect(bundle.members.map(\.name).prefix(4) == ["manifest.json", "manifest.sig", "facts.json", "collection.log"])
        #expect(bundle.manifest.members.map(\.path).contains("raw/get-chassis-inventory.xml"))
    }

    @Test func partiallyFailedCollectionSaysWhatFailedAndWhy() throws {
        let bundle = try BundleReader().read(bytes: try Sample.encoded())
        let failed = bundle.manifest.outcomes.filter { $0.status != .ok }
        #expect(failed.map(\.rpc) == ["get-chassis-cluster-status", "get-system-core-dumps"])
        #expect(failed[0].status == .rpcError)
        #expect(failed[0].message == "chassis cluster is not enabled")
        #expect(failed[1].status == .timeout)
        #expect(failed[1].durationSeconds == 60)
        // The timed-out RPC has no reply member, the refused one keeps its error reply.
        #expect(bundle.member("raw/get-system-core-dumps.xml") == nil)
        #expect(bundle.member("raw/get-chassis-cluster-status.xml") != nil)
        // The refusal is the RPC's outcome, not a parse error of the facts (as the collector reads it).
        #expect(bundle.contents.facts.parseErrors["get-chassis-cluster-status"] == nil)
    }

    @Test func manifestRecordsOutcomesAndTimesInUTC() throws {
        let members = try Forge.members(of: try Sample.encoded())
        let manifest = String(decoding: members[0].bytes, as: UTF8.self)
        #expect(manifest.contains("\"started\" : \"2025-11-25T02:00:00.250Z\""))
        #expect(manifest.contains("\"status\" : \"rpc-error\""))
        #expect(manifest.contains("\"trigger\" : \"scheduled\""))
        #expect(manifest.contains("\"publicKey\" : \"\(Sample.key.publicKey.base64)\""))
    }

    @Test func bundleFileIsMode0640AndNoTemporaryFileRemains() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = try BundleWriter(directory: dir.url, key: Sample.key).write(try Sample.contents())
        let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        #expect(mode == 0o640)
        #expect(try dir.names() == [url.lastPathComponent])
    }

    /// A full disk: the outbox on a 256 KiB tmpfs of the test's own (the tests run as root).
    @Test func fullDiskFailsPreciselyAndLeavesQueuedBundlesAlone() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        guard mount("tmpfs", dir.path, "tmpfs", 0, "size=256k,mode=0750") == 0 else {
            Issue.record("cannot mount a tmpfs for the outbox (the tests run as root): \(String(cString: strerror(errno)))")
            return
        }
        defer { umount2(dir.path, Int32(MNT_DETACH)) }
        let writer = BundleWriter(directory: dir.url, key: Sample.key)
        let queued = try writer.write(try Sample.contents())
        let queuedBytes = try Data(contentsOf: queued)

        // Fill what is left.
        let filler = dir.url.appendingPathComponent("filler")
        let fd = open(filler.path, O_WRONLY | O_CREAT, 0o600)
        #expect(fd >= 0)
        let chunk = [UInt8](repeating: 0x55, count: 4096)
        var filled = 0
        while filled < 1 << 20, write(fd, chunk, chunk.count) == chunk.count { filled += chunk.count }
        close(fd)
        #expect(filled < 256 * 1024, "the filler should have hit the end of the tmpfs")

        do {
            _ = try writer.write(try Sample.contents(hostname: "second", serial: "S2"))
            Issue.record("a bundle was written to a full disk")
        } catch let error as BundleWriteError {
            guard case .system(_, let path, let code) = error else {
                Issue.record("expected a system-call error, got \(error)")
                return
            }
            #expect(code == ENOSPC)
            #expect(path.hasPrefix(dir.path))
            #expect(error.description.contains("No space left on device"), "\(error)")
        }
        // The queued bundle is untouched, and nothing half-written is left beside it.
        #expect(try dir.names() == [queued.lastPathComponent, "filler"].sorted())
        #expect(try Data(contentsOf: queued) == queuedBytes)
        _ = try BundleReader(trust: .keys([Sample.key.publicKey])).read(contentsOf: queued)

        // Space freed, the next bundle is written.
        try FileManager.default.removeItem(at: filler)
        let next = try writer.write(try Sample.contents(hostname: "second", serial: "S2"))
        #expect(try dir.names() == [queued.lastPathComponent, next.lastPathComponent].sorted())
    }

    @Test func fileNamesAreSanitisedAndUnknownPartsNamed() throws {
        let odd = try Sample.contents(hostname: "../core router/1", serial: nil)
        #expect(BundleFileName.base(for: odd) == "_core_router_1-unknown-20251125-020000")
        let empty = try Sample.contents(hostname: "", serial: "ÄÖ")
        #expect(BundleFileName.base(for: empty) == "unknown-unknown-20251125-020000")
        #expect(BundleFileName.isBundle("r1-X-20251125-020000.tar.gz"))
        #expect(!BundleFileName.isBundle(".r1-X-20251125-020000.tar.gz.123-ab.tmp"))
        #expect(BundleFileName.isTemporary(".r1-X-20251125-020000.tar.gz.123-ab.tmp"))
    }

    @Test func amnesiacDevicesInTheSameSecondNeverOverwriteEachOther() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let writer = BundleWriter(directory: dir.url, key: Sample.key)
        var written: [URL] = []
        for _ in 0 ..< 3 {
            written.append(try writer.write(try Sample.contents(hostname: "Amnesiac", serial: nil)))
        }
        #expect(written.map(\.lastPathComponent) == [
            "Amnesiac-unknown-20251125-020000.tar.gz",
            "Amnesiac-unknown-20251125-020000-2.tar.gz",
            "Amnesiac-unknown-20251125-020000-3.tar.gz",
        ])
        let ids = try written.map { try BundleReader().read(contentsOf: $0).manifest.bundleId }
        #expect(Set(ids).count == 3)
    }

    @Test func concurrentWritersOfTheSameNameEachGetTheirOwnFile() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let writer = BundleWriter(directory: dir.url, key: Sample.key)
        let contents = try Sample.contents(hostname: "Amnesiac", serial: nil)
        let urls = try await withThrowingTaskGroup(of: URL.self) { group in
            for _ in 0 ..< 8 {
                var copy = contents
                copy.bundleId = UUID()
                group.addTask { try writer.write(copy) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(urls).count == 8)
        let bundles = try dir.names().filter(BundleFileName.isBundle)
        #expect(bundles.count == 8)
        let ids = try urls.map { try BundleReader().read(contentsOf: $0).manifest.bundleId }
        #expect(Set(ids).count == 8)
    }

    @Test func writingToAnExistingExactPathFails() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let target = dir.url.appendingPathComponent("copy.tar.gz")
        let writer = BundleWriter(directory: dir.url, key: Sample.key)
        try writer.write(try Sample.contents(), to: target)
        #expect(throws: BundleWriteError.self) { try writer.write(try Sample.contents(), to: target) }
        #expect(try dir.names() == ["copy.tar.gz"])
    }

    @Test func duplicateOrUnsafeRPCNamesAreRefused() throws {
        var contents = try Sample.contents()
        contents.rawReplies.append(contents.rawReplies[0])
        #expect(throws: BundleWriteError.invalidContents("two replies for RPC get-software-information")) {
            try BundleWriter.encode(contents, key: Sample.key)
        }
        contents = try Sample.contents()
        contents.rawReplies[0].rpc = "../../etc/passwd"
        #expect(throws: BundleWriteError.self) { try BundleWriter.encode(contents, key: Sample.key) }
    }

    @Test func systemTarReadsTheArchive() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") || FileManager.default.isExecutableFile(atPath: "/bin/tar") else {
            Issue.record("tar is not installed: cannot check that bundles open with tar xzf")
            return
        }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = try BundleWriter(directory: dir.url, key: Sample.key).write(try Sample.contents())
        let out = dir.url.appendingPathComponent("x")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "xzf", url.path, "-C", out.path]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        for member in try Forge.members(of: try Data(contentsOf: url).map { $0 }) {
            let extracted = try Data(contentsOf: out.appendingPathComponent(member.name))
            #expect(Array(extracted) == member.bytes, "\(member.name) differs after tar xzf")
        }
    }
}

@Suite struct AgentKeyTests {
    @Test func createdOnceWithMode0600AndLoadedAfterwards() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let state = dir.url.appendingPathComponent("state")
        let first = try AgentKey.loadOrCreate(stateDirectory: state)
        let again = try AgentKey.loadOrCreate(stateDirectory: state)
        #expect(first.publicKey == again.publicKey)
        let path = AgentKey.url(stateDirectory: state).path
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: state.path) == [AgentKey.fileName])
    }

    @Test func concurrentFirstStartsAgreeOnOneKey() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let keys = try await withThrowingTaskGroup(of: AgentPublicKey.self) { group in
            for _ in 0 ..< 8 { group.addTask { try AgentKey.loadOrCreate(stateDirectory: dir.url).publicKey } }
            return try await group.reduce(into: Set<AgentPublicKey>()) { $0.insert($1) }
        }
        #expect(keys.count == 1)
        #expect(try dir.names() == [AgentKey.fileName])
    }

    @Test func keyReadableByOthersIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = try AgentKey.loadOrCreate(stateDirectory: dir.url)
        let path = AgentKey.url(stateDirectory: dir.url).path
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: AgentKeyError.insecurePermissions(path: path, mode: "644")) {
            try AgentKey.load(stateDirectory: dir.url)
        }
    }

    @Test func missingKeyIsNotCreatedByLoad() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        #expect(throws: AgentKeyError.missing(path: AgentKey.url(stateDirectory: dir.url).path)) {
            try AgentKey.load(stateDirectory: dir.url)
        }
        #expect(try dir.names().isEmpty)
    }

    @Test func fingerprintIsSHA256OfTheRawKey() throws {
        let key = Sample.key.publicKey
        #expect(key.fingerprint.hasPrefix("SHA256:"))
        #expect(key.fingerprint.count == 7 + 43)
        #expect(try AgentPublicKey(base64: key.base64 + "\n") == key)
        #expect(key.fingerprint != Sample.otherKey.publicKey.fingerprint)
        #expect(throws: BundleError.self) { try AgentPublicKey(base64: "AAAA") }
    }
}

extension BundleWriterTests {
    @Test func verifyingWithoutDecodingFactsStillChecksEverything() throws {
        let bytes = try Sample.encoded()
        let bundle = try BundleReader(decodesFacts: false).read(bytes: bytes)
        #expect(bundle.contents.facts == DeviceFacts())
        #expect(!bundle.factsJSON.isEmpty)
        var tampered = try Forge.members(of: bytes)
        tampered[2].bytes[10] ^= 1  // facts.json
        #expect(throws: BundleError.digestMismatch(member: "facts.json")) {
            try BundleReader(decodesFacts: false).read(bytes: try Forge.bundle(tampered))
        }
    }
}
