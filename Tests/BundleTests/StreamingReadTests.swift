import Crypto
import Foundation
import Testing
import TestSupport
@testable import Bundle

/// The reader that does not retain contents (the support intake's) inflates and checks the
/// archive a piece at a time: it must accept exactly what the whole-archive reader accepts, refuse
/// the same way, and hold only what it keeps.
@Suite struct StreamingReadTests {
    static func streaming(pieces: Int) -> BundleReader {
        var reader = BundleReader(retainsContents: false)
        reader.pieceSize = pieces
        return reader
    }

    /// Both readers on the same bytes: the same verdict, the same manifest and facts when valid,
    /// and, with `sameError`, the same error when not (a single fault; with several, each reader
    /// reports the first it meets). `pieces`: how much the streaming reader inflates at a time.
    func expectSameVerdict(_ bytes: [UInt8], _ label: String, sameError: Bool = true, pieces: [Int] = [256 << 10, 512, 7]) {
        for size in pieces {
            expectSameVerdict(bytes, "\(label), pieces of \(size)", sameError: sameError, streaming: Self.streaming(pieces: size))
        }
    }

    func expectSameVerdict(_ bytes: [UInt8], _ label: String, sameError: Bool, streaming: BundleReader) {
        let whole = Result { () throws(BundleError) in try BundleReader().read(bytes: bytes) }
        let streamed = Result { () throws(BundleError) in try streaming.read(bytes: bytes) }
        switch (whole, streamed) {
        case let (.success(a), .success(b)):
            #expect(a.manifest.bundleId == b.manifest.bundleId && a.factsJSON == b.factsJSON && a.signer == b.signer, "\(label)")
            #expect(a.contents.facts == b.contents.facts && a.contents.log == b.contents.log, "\(label)")
            #expect(b.members.map(\.name) == a.members.map(\.name).filter { ["manifest.json", "manifest.sig", "facts.json", "collection.log"].contains($0) })
            #expect(b.contents.rawReplies.isEmpty && !a.contents.rawReplies.isEmpty)
        case let (.failure(a), .failure(b)):
            #expect(!sameError || a == b, "\(label): whole \(a), streamed \(b)")
        default:
            Issue.record("\(label): whole \(whole), streamed \(streamed)")
        }
    }

    @Test func agreesOnTheFixtureAndEveryDamagedCopy() throws {
        let fixture = try Fixtures.bytes(SampleBundleFixtureTests.version1)
        expectSameVerdict(fixture, "fixture")
        let good = try Sample.encoded()
        expectSameVerdict(good, "sample")
        // Cut short at every length class, and with the archive's end damaged.
        for cut in stride(from: 0, to: good.count, by: max(1, good.count / 97)) {
            expectSameVerdict(Array(good.prefix(cut)), "cut at \(cut)")
        }
        var generator = SystemRandomNumberGenerator()
        for round in 0 ..< 200 {
            var bytes = good
            let index = Int.random(in: 10 ..< bytes.count - 8, using: &generator)
            bytes[index] ^= UInt8.random(in: 1 ... 255, using: &generator)
            // Damage to the deflate data garbles what follows it: the whole read meets the bad
            // checksum at the end first, the streaming read may meet a garbled tar header first.
            expectSameVerdict(bytes, "byte \(index) flipped (round \(round))", sameError: false, pieces: [256 << 10, 512])
        }
    }

    /// Archive-level damage, re-compressed so that it reaches the tar and manifest checks:
    /// a member cut, bytes after the end marker, a single end block, an unlisted member, a member
    /// changed after signing.
    @Test func agreesOnDoctoredArchives() throws {
        let tar = try Gzip.decompress(try Sample.encoded(), limit: 1 << 30)
        let members = try USTar.members(of: tar, limits: .init())
        let archived = try USTar.archive(members, modified: 0)
        var cases: [(String, [UInt8])] = [("as written", archived)]
        cases.append(("trailing bytes", archived + [1] + [UInt8](repeating: 0, count: 511)))
        cases.append(("one end block", Array(archived.dropLast(512))))
        cases.append(("member cut", Array(archived.dropLast(1024 + 10))))
        cases.append(("header cut", Array(archived.dropLast(1024 + 300)).prefix(512 * 3 + 100).map { $0 }))
        var unlisted = members
        unlisted.append(ArchiveMember(name: "raw/extra.xml", bytes: Array("<x/>".utf8)))
        cases.append(("unlisted member", try USTar.archive(unlisted, modified: 0)))
        var changed = members
        changed[changed.count - 1].bytes[0] ^= 1
        cases.append(("member changed", try USTar.archive(changed, modified: 0)))
        for (label, archive) in cases {
            expectSameVerdict(try Gzip.compress(archive), label)
        }
    }

    /// A member the streaming reader keeps (facts.json, collection.log) is bounded on its own: a
    /// signed bundle with a 20 MiB log is refused at the log's header, before any of it is held.
    @Test func aKeptMemberOverItsLimitIsRefused() throws {
        var contents = try Sample.contents()
        contents.log = String(repeating: "x", count: 20 << 20)
        let bytes = try BundleWriter.encode(contents, key: Sample.key)
        #expect(throws: BundleError.tooLarge("member collection.log is \(20 << 20) bytes, more than the limit of \(16 << 20) for a member read into memory")) {
            _ = try Self.streaming(pieces: 256 << 10).read(bytes: bytes)
        }
        #expect(try BundleReader().read(bytes: bytes).contents.log.count == 20 << 20)
    }

    /// The reports' reader keeps the configuration reply (and only it) besides the facts.
    @Test func aRetainedReplyIsKeptWholeAndOnlyIt() throws {
        let bytes = try Sample.encoded()
        let whole = try BundleReader().read(bytes: bytes)
        var reader = Self.streaming(pieces: 512)
        reader.retainedReplies = ["get-configuration"]
        let kept = try reader.read(bytes: bytes)
        #expect(kept.contents.rawReplies.map(\.rpc) == ["get-configuration"])
        #expect(kept.contents.rawReplies.first?.bytes == whole.contents.rawReplies.first { $0.rpc == "get-configuration" }?.bytes)
        #expect(whole.contents.rawReplies.count > 1)
    }

    /// A bundle whose raw reply unpacks to 64 MiB: the streaming reader keeps none of it, and
    /// its member of facts comes out the same.
    @Test func keepsNoRawReply() throws {
        var contents = try Sample.contents()
        contents.rawReplies.append(RawReply(rpc: "get-large-output", bytes: [UInt8](repeating: UInt8(ascii: "a"), count: 64 << 20)))
        contents.outcomes.append(RPCOutcome(rpc: "get-large-output", status: .ok, durationSeconds: 1))
        let bytes = try BundleWriter.encode(contents, key: Sample.key)
        let bundle = try Self.streaming(pieces: 256 << 10).read(bytes: bytes)
        #expect(bundle.members.reduce(0) { $0 + $1.bytes.count } < 1 << 20)
        #expect(bundle.manifest.members.contains { $0.path == "raw/get-large-output.xml" && $0.size == 64 << 20 })
    }
}
