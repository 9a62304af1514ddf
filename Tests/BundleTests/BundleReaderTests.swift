import Foundation
import Junos
import Testing
import TestSupport
@testable import Bundle

/// Every way a bundle can be wrong gives its own one-line error.
@Suite struct BundleVerificationTests {
    let good: [UInt8]
    let members: [ArchiveMember]

    init() throws {
        good = try Sample.encoded()
        members = try Forge.members(of: good)
    }

    private func error(_ bytes: [UInt8], _ reader: BundleReader = BundleReader()) -> BundleError? {
        do {
            _ = try reader.read(bytes: bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func goodBundleVerifiesWithEmbeddedAndTrustedKey() throws {
        _ = try BundleReader().read(bytes: good)
        _ = try BundleReader(trust: .keys([Sample.key.publicKey])).read(bytes: good)
    }

    @Test func notGzip() {
        #expect(error(Array("hello, this is not a bundle".utf8)) == .notGzip)
        #expect(error([]) == .notGzip)
    }

    @Test func corruptCompressedData() {
        var bytes = good
        for i in stride(from: 100, to: 140, by: 1) { bytes[i] ^= 0x5a }
        let failure = error(bytes)
        guard case .corruptCompression = failure else {
            Issue.record("expected corruptCompression, got \(String(describing: failure))")
            return
        }
        #expect(failure!.description.hasPrefix("corrupt bundle: gzip data is damaged"))
    }

    @Test func truncatedFile() {
        for cut in [good.count / 2, good.count - 4, 20] {
            let failure = error(Array(good.prefix(cut)))
            guard case .truncated = failure else {
                Issue.record("cut at \(cut): expected truncated, got \(String(describing: failure))")
                continue
            }
        }
    }

    @Test func trailingGarbageAfterTheGzipStream() {
        guard case .corruptCompression(let reason) = error(good + [1, 2, 3]) else {
            Issue.record("expected corruptCompression")
            return
        }
        #expect(reason.contains("3 bytes of unexpected data"))
    }

    @Test func tamperedReplyIsCaughtByItsDigest() throws {
        var forged = members
        let index = try #require(forged.firstIndex { $0.name == "raw/get-chassis-inventory.xml" })
        forged[index].bytes[200] ^= 1
        #expect(error(try Forge.bundle(forged)) == .digestMismatch(member: "raw/get-chassis-inventory.xml"))
    }

    @Test func tamperedManifestFailsTheSignature() throws {
        var forged = members
        let text = String(decoding: forged[0].bytes, as: UTF8.self)
            .replacingOccurrences(of: "JN1249018AFB", with: "JN00000000AA")
        forged[0].bytes = Array(text.utf8)
        #expect(error(try Forge.bundle(forged)) == .badSignature(fingerprint: Sample.key.publicKey.fingerprint))
    }

    @Test func resignedWithAnotherKeyFailsTrust() throws {
        // An attacker edits the manifest, embeds their own key and signs: integrity holds,
        // origin does not.
        let text = String(decoding: members[0].bytes, as: UTF8.self)
            .replacingOccurrences(of: Sample.key.publicKey.base64, with: Sample.otherKey.publicKey.base64)
        let forged = try Forge.signed(Array(text.utf8), with: Sample.otherKey, replacing: members)
        let bytes = try Forge.bundle(forged)
        _ = try BundleReader().read(bytes: bytes)
        let failure = error(bytes, BundleReader(trust: .keys([Sample.key.publicKey])))
        #expect(failure == .untrustedKey(fingerprint: Sample.otherKey.publicKey.fingerprint))
        #expect(failure!.description.contains("not among the trusted keys"))
    }

    /// A compression bomb is refused by its signer before it is unpacked: 64 MiB of zeros
    /// (~64 KiB compressed) under a 1 MiB unpacking limit fails the trust check from the first two
    /// members when its key is not trusted (unpacking it whole first failed on the limit, after
    /// inflating up to it), and the limit when it is.
    @Test func anUntrustedBombIsRefusedBeforeItIsUnpacked() throws {
        var contents = try Sample.contents()
        contents.rawReplies.append(RawReply(rpc: "get-zeros", bytes: [UInt8](repeating: 0x30, count: 64 << 20)))
        let bomb = try BundleWriter.encode(contents, key: Sample.otherKey)
        #expect(bomb.count < 1 << 20)
        let limits = BundleReader.Limits(maximumUnpackedSize: 1 << 20)
        let untrusted = error(bomb, BundleReader(trust: .keys([Sample.key.publicKey]), limits: limits))
        #expect(untrusted == .untrustedKey(fingerprint: Sample.otherKey.publicKey.fingerprint), "\(String(describing: untrusted))")
        let trusted = error(bomb, BundleReader(trust: .keys([Sample.otherKey.publicKey]), limits: limits))
        #expect(trusted?.description.contains("limit") == true, "\(String(describing: trusted))")
    }

    @Test func signatureFromAnotherKeyOverTheSameManifest() throws {
        let forged = try Forge.signed(members[0].bytes, with: Sample.otherKey, replacing: members)
        #expect(error(try Forge.bundle(forged)) == .badSignature(fingerprint: Sample.key.publicKey.fingerprint))
    }

    @Test func unknownFutureVersionAsksForAnUpgrade() throws {
        let text = String(decoding: members[0].bytes, as: UTF8.self)
            .replacingOccurrences(of: "\"formatVersion\" : 1", with: "\"formatVersion\" : 2")
        let forged = try Forge.signed(Array(text.utf8), with: Sample.key, replacing: members)
        let failure = error(try Forge.bundle(forged))
        #expect(failure == .unsupportedVersion(found: 2, supported: 1))
        #expect(failure!.description.contains("upgrade care-agent"))
    }

    @Test func manifestThatIsNotJSON() throws {
        let forged = try Forge.signed(Array("{ nope".utf8), with: Sample.key, replacing: members)
        guard case .manifestUnreadable = error(try Forge.bundle(forged)) else {
            Issue.record("expected manifestUnreadable")
            return
        }
    }

    @Test(arguments: ["../x", "../../etc/cron.d/evil", "/etc/passwd", "raw/../../x", "raw//x", "./x"])
    func pathTraversalMemberNamesAreRefused(name: String) throws {
        let forged = members + [ArchiveMember(name: name, bytes: Array("boom".utf8))]
        let failure = error(try Forge.bundle(forged))
        #expect(failure == .unsafeMemberName(name))
        #expect(failure!.description.contains("unsafe member name"))
    }

    @Test func linksAndDevicesAreRefused() throws {
        var tar = try USTar.archive(members, modified: 0)
        // Turn the first member (manifest.json) into a symlink and fix the header checksum.
        tar[156] = UInt8(ascii: "2")
        var sum = 0
        for i in 0 ..< 512 { sum += (148 ..< 156).contains(i) ? 32 : Int(tar[i]) }
        let field = Array(String(sum, radix: 8).utf8)
        for i in 0 ..< 6 { tar[148 + i] = i < 6 - field.count ? UInt8(ascii: "0") : field[i - (6 - field.count)] }
        #expect(error(try Gzip.compress(tar)) == .unsupportedMemberType(name: "manifest.json", type: "2"))
    }

    @Test func headerChecksumIsChecked() throws {
        var tar = try USTar.archive(members, modified: 0)
        tar[0] = UInt8(ascii: "X")  // rename manifest.json without fixing the checksum
        guard case .malformedArchive(let reason) = error(try Gzip.compress(tar)) else {
            Issue.record("expected malformedArchive")
            return
        }
        #expect(reason.contains("checksum"))
    }

    @Test func decompressionBombStopsAtTheUnpackedLimit() throws {
        // 64 MiB of zeros compress to about 64 KiB.
        let bomb = try Forge.bundle(members + [ArchiveMember(name: "raw/zeros.xml", bytes: [UInt8](repeating: 0, count: 64 << 20))])
        #expect(bomb.count < 1 << 20)
        let reader = BundleReader(limits: .init(maximumUnpackedSize: 16 << 20))
        let failure = error(bomb, reader)
        guard case .tooLarge(let reason) = failure else {
            Issue.record("expected tooLarge, got \(String(describing: failure))")
            return
        }
        #expect(reason.contains("decompression limit"))
    }

    @Test func oversizedMemberIsRefusedFromItsHeader() throws {
        let big = try Forge.bundle(members + [ArchiveMember(name: "raw/big.xml", bytes: [UInt8](repeating: 0x20, count: 2 << 20))])
        let failure = error(big, BundleReader(limits: .init(maximumMemberSize: 1 << 20)))
        #expect(failure == .tooLarge("member raw/big.xml is \(2 << 20) bytes, more than the limit of \(1 << 20)"))
    }

    @Test func tooManyMembers() throws {
        let many = members + (0 ..< 50).map { ArchiveMember(name: "raw/r\($0).xml", bytes: []) }
        #expect(error(try Forge.bundle(many), BundleReader(limits: .init(maximumMemberCount: 20))) == .tooManyMembers(limit: 20))
    }

    @Test func oversizedFileIsRefusedBeforeReading() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.url.appendingPathComponent("b.tar.gz")
        try Data(good).write(to: url)
        #expect(throws: BundleError.tooLarge("the file is \(good.count) bytes, more than the limit of 1000")) {
            try BundleReader(limits: .init(maximumFileSize: 1000)).read(contentsOf: url)
        }
    }

    @Test func extraMemberNotInTheManifest() throws {
        let forged = members + [ArchiveMember(name: "raw/injected.xml", bytes: Array("<x/>".utf8))]
        #expect(error(try Forge.bundle(forged)) == .unlistedMember("raw/injected.xml"))
    }

    @Test func removedMemberListedInTheManifest() throws {
        let forged = members.filter { $0.name != "facts.json" }
        #expect(error(try Forge.bundle(forged)) == .missingMember("facts.json"))
        let unsigned = members.filter { $0.name != "manifest.sig" }
        #expect(error(try Forge.bundle(unsigned)) == .missingMember("manifest.sig"))
    }

    @Test func duplicateMemberNames() throws {
        let forged = members + [members[2]]
        #expect(error(try Forge.bundle(forged)) == .duplicateMember("facts.json"))
    }

    @Test func everyErrorIsOneLine() {
        let all: [BundleError] = [
            .unreadableFile(path: "/x", reason: "No such file or directory"), .notGzip, .corruptCompression("x"),
            .truncated("x"), .tooLarge("x"), .tooManyMembers(limit: 1), .malformedArchive("x"), .unsafeMemberName("../x"),
            .unsupportedMemberType(name: "x", type: "2"), .duplicateMember("x"), .missingMember("x"), .unlistedMember("x"),
            .manifestUnreadable("x"), .unsupportedVersion(found: 2, supported: 1), .invalidPublicKey("x"),
            .badSignature(fingerprint: "SHA256:x"), .untrustedKey(fingerprint: "SHA256:x"), .digestMismatch(member: "x"),
            .sizeMismatch(member: "x", expected: 1, found: 2),
        ]
        for error in all { #expect(!error.description.contains("\n")) }
        #expect(Set(all.map(\.description)).count == all.count)
    }
}
