import Crypto
import Foundation
import Junos

/// Which signers a reader accepts.
public enum BundleTrust: Sendable {
    /// Any valid signature by the key embedded in the manifest (proves integrity, not origin).
    case embeddedKey
    /// The embedded key must also be one of these (proves origin).
    case keys(Set<AgentPublicKey>)
}

/// A bundle whose hashes and signature checked out.
public struct VerifiedBundle: Sendable {
    public var manifest: BundleManifest
    public var contents: BundleContents
    /// facts.json exactly as stored (tools render it generically, whatever DeviceFacts looks like today).
    public var factsJSON: [UInt8]
    /// Why facts.json did not decode into today's DeviceFacts (then `contents.facts` is empty).
    public var factsDecodingError: String?
    public var signer: AgentPublicKey
    /// Every archive member, in archive order; from a reader that does not retain contents
    /// (``BundleReader/retainsContents``) only manifest.json, manifest.sig, facts.json and
    /// collection.log.
    public var members: [ArchiveMember]

    public func member(_ name: String) -> [UInt8]? { members.first { $0.name == name }?.bytes }

    /// Why the manifest's device identity disagrees with the facts, if it does: a bundle signed
    /// by a trusted key that files itself under another chassis. The intake refuses it (422);
    /// `bundle verify` fails on it. Nil when facts were not decoded.
    public var identityProblem: String? {
        let device = manifest.device
        guard !device.name.isEmpty else { return "the manifest names no device" }
        if let serial = device.chassisSerial, let factSerial = contents.facts.inventory?.chassisSerial, serial != factSerial {
            return "the manifest says chassis serial \(serial), the chassis inventory says \(factSerial)"
        }
        if let hostname = device.hostname, let factHost = contents.facts.software?.hostname, hostname != factHost {
            return "the manifest says host name \(hostname), show version says \(factHost)"
        }
        return nil
    }
}

/// Reads and verifies bundles entirely in memory: nothing is ever unpacked to disk.
public struct BundleReader: Sendable {
    /// Caps that stop a hostile or broken file from exhausting memory.
    public struct Limits: Sendable {
        public var maximumFileSize: Int
        public var maximumUnpackedSize: Int
        public var maximumMemberSize: Int
        public var maximumMemberCount: Int

        public init(maximumFileSize: Int = 256 << 20, maximumUnpackedSize: Int = 512 << 20,
                    maximumMemberSize: Int = 256 << 20, maximumMemberCount: Int = 1024) {
            self.maximumFileSize = maximumFileSize
            self.maximumUnpackedSize = maximumUnpackedSize
            self.maximumMemberSize = maximumMemberSize
            self.maximumMemberCount = maximumMemberCount
        }
    }

    public var trust: BundleTrust
    public var limits: Limits
    /// Whether to decode facts.json into `contents.facts`. Verification alone does not need it,
    /// and it is the largest cost of reading a bundle (docs/performance.md).
    public var decodesFacts: Bool
    /// Whether to keep every member (the raw replies in `contents`). Without, the archive is
    /// inflated and checked a piece at a time and only the manifest, signature, facts and log
    /// are kept (each at most ``maximumKeptMemberSize``): verifying costs the size of those,
    /// however far the raw replies unpack, where holding it whole costs up to
    /// `maximumUnpackedSize` (the support intake, which stores the file as it came, needs no more).
    public var retainsContents: Bool
    /// Without retained contents: the raw replies kept all the same (reports keep the
    /// configuration, `get-configuration`), each up to `maximumMemberSize`.
    public var retainedReplies: Set<String> = []
    /// Without retained contents: the largest facts.json or collection.log read into memory.
    public static let maximumKeptMemberSize = 16 << 20
    /// Without retained contents: how much is inflated at a time (tests use small pieces).
    var pieceSize = 256 * 1024

    public init(trust: BundleTrust = .embeddedKey, limits: Limits = Limits(), decodesFacts: Bool = true, retainsContents: Bool = true) {
        self.trust = trust
        self.limits = limits
        self.decodesFacts = decodesFacts
        self.retainsContents = retainsContents
    }

    public func read(contentsOf url: URL) throws(BundleError) -> VerifiedBundle {
        try read(bytes: SystemCall.readFile(url.path, limit: limits.maximumFileSize))
    }

    /// Unpacks, checks the format version, the signature (and trust), and every member's size and
    /// SHA-256 against the signed manifest; then decodes the contents.
    public func read(bytes: [UInt8]) throws(BundleError) -> VerifiedBundle {
        guard bytes.count <= limits.maximumFileSize else {
            throw .tooLarge("the file is \(bytes.count) bytes, more than the limit of \(limits.maximumFileSize)")
        }
        // The signature first, from the first two members alone: a bundle whose signer is not
        // trusted (or whose signature is bad) is refused before it is unpacked whole, so that a
        // compression bomb costs a few kilobytes of inflating unless a trusted key signed it.
        // The whole archive's first two members are those same bytes.
        let (manifest, signer) = try signedHead(bytes)
        var members: [ArchiveMember] = []
        var digests: [USTar.StreamedMember] = []
        if retainsContents {
            members = try USTar.members(of: try Gzip.decompress(bytes, limit: limits.maximumUnpackedSize), limits: limits)
            digests = members.map { USTar.StreamedMember(name: $0.name, size: $0.bytes.count, sha256: BundleWriter.hex(SHA256.hash(data: $0.bytes))) }
        } else {
            let small = min(limits.maximumMemberSize, Self.maximumKeptMemberSize)
            var keep = ["manifest.json": small, "manifest.sig": small, "facts.json": small, "collection.log": small]
            for rpc in retainedReplies { keep["raw/\(rpc).xml"] = limits.maximumMemberSize }
            var tar = USTar.StreamReader(limits: limits, keep: keep)
            let inflater = try GzipInflater(bytes, limit: limits.maximumUnpackedSize, chunkSize: pieceSize)
            while let piece = try inflater.next() { try tar.feed(piece) }
            digests = try tar.finish()
            members = digests.compactMap { member in member.bytes.map { ArchiveMember(name: member.name, bytes: $0) } }
        }
        let byDigest = Dictionary(digests.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var listed = Set<String>(["manifest.json", "manifest.sig"])
        for entry in manifest.members {
            guard let member = byDigest[entry.path] else { throw .missingMember(entry.path) }
            guard member.size == entry.size else {
                throw .sizeMismatch(member: entry.path, expected: entry.size, found: member.size)
            }
            guard member.sha256 == entry.sha256.lowercased() else {
                throw .digestMismatch(member: entry.path)
            }
            listed.insert(entry.path)
        }
        if let extra = digests.first(where: { !listed.contains($0.name) }) { throw .unlistedMember(extra.name) }
        var byName: [String: [UInt8]] = [:]
        for member in members { byName[member.name] = member.bytes }

        guard let factsJSON = byName["facts.json"] else { throw .missingMember("facts.json") }
        var facts = DeviceFacts()
        var factsError: String?
        if decodesFacts {
            do {
                facts = try JSONDecoder().decode(DeviceFacts.self, from: Data(factsJSON))
            } catch {
                factsError = Self.reason(error)
            }
        }
        let raw = members.compactMap { member -> RawReply? in
            guard member.name.hasPrefix("raw/"), member.name.hasSuffix(".xml") else { return nil }
            return RawReply(rpc: String(member.name.dropFirst(4).dropLast(4)), bytes: member.bytes)
        }
        let contents = BundleContents(
            bundleId: manifest.bundleId, agent: manifest.agent, device: manifest.device,
            trigger: manifest.collection.trigger, started: manifest.collection.started,
            finished: manifest.collection.finished, outcomes: manifest.outcomes, rawReplies: raw,
            facts: facts, log: String(decoding: byName["collection.log"] ?? [], as: UTF8.self),
            derivedFrom: manifest.derivedFrom, event: manifest.collection.event)
        return VerifiedBundle(manifest: manifest, contents: contents, factsJSON: factsJSON,
                              factsDecodingError: factsError, signer: signer, members: members)
    }

    /// The manifest and its signer, from the archive's first two members (manifest.json,
    /// manifest.sig: the order ``BundleWriter`` writes, required), inflated only as far as they
    /// go, with every tar check: the signature over the manifest holds and the signer is trusted.
    /// Checks a bundle extracted into `directory` (`tar -xzf BUNDLE -C DIR`): the signature of its
    /// manifest.json (and trust), then each `raw/<rpc>.xml` file there against the size and
    /// SHA-256 the manifest lists for it; a reply file the manifest does not list is refused.
    /// Members missing from the directory are not (a person may keep only the replies).
    public func verifyExtracted(directory: URL) throws(BundleError) -> (manifest: BundleManifest, signer: AgentPublicKey) {
        let manifestBytes = try SystemCall.readFile(directory.appendingPathComponent("manifest.json").path, limit: Self.maximumManifestSize)
        let signature = try SystemCall.readFile(directory.appendingPathComponent("manifest.sig").path, limit: 4096)
        let manifest = try Self.decodeManifest(manifestBytes)
        guard manifest.signer.algorithm == "ed25519" else {
            throw .manifestUnreadable("unknown signature algorithm \(manifest.signer.algorithm)")
        }
        let signer = try AgentPublicKey(base64: manifest.signer.publicKey)
        guard signer.isValidSignature(signature, for: manifestBytes) else { throw .badSignature(fingerprint: signer.fingerprint) }
        if case let .keys(trusted) = trust, !trusted.contains(signer) { throw .untrustedKey(fingerprint: signer.fingerprint) }
        let listed = Dictionary(manifest.members.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        let raw = directory.appendingPathComponent("raw").path
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: raw)) ?? []).filter { $0.hasSuffix(".xml") }.sorted()
        for name in names {
            let path = "raw/" + name
            guard let entry = listed[path] else { throw .unlistedMember(path) }
            let bytes = try SystemCall.readFile(raw + "/" + name, limit: limits.maximumMemberSize)
            guard bytes.count == entry.size else { throw .sizeMismatch(member: path, expected: entry.size, found: bytes.count) }
            guard BundleWriter.hex(SHA256.hash(data: bytes)) == entry.sha256.lowercased() else { throw .digestMismatch(member: path) }
        }
        return (manifest, signer)
    }

    func signedHead(_ bytes: [UInt8]) throws(BundleError) -> (manifest: BundleManifest, signer: AgentPublicKey) {
        let small = Limits(maximumFileSize: limits.maximumFileSize, maximumUnpackedSize: limits.maximumUnpackedSize,
                           maximumMemberSize: min(limits.maximumMemberSize, Self.maximumManifestSize), maximumMemberCount: 2)
        // Each member's header tells how far the next one is: inflate that far, then look again.
        var prefix = try Gzip.decompressPrefix(bytes, count: USTar.blockSize)
        var members: [ArchiveMember] = []
        for count in 1 ... 2 {
            var end = USTar.blockSize
            for member in members { end += USTar.blockSize + USTar.padded(member.bytes.count) }
            let size = try Self.declaredSize(prefix, at: end - USTar.blockSize, limit: small.maximumMemberSize)
            let needed = end + USTar.padded(size) + (count == 1 ? USTar.blockSize : 0)
            if prefix.count < needed { prefix = try Gzip.decompressPrefix(bytes, count: needed) }
            members = try USTar.members(of: prefix, limits: small, first: count)
            guard members.count == count else { throw .truncated("the archive ends inside its first members") }
        }
        guard members[0].name == "manifest.json" else { throw .missingMember("manifest.json") }
        guard members[1].name == "manifest.sig" else { throw .missingMember("manifest.sig") }
        let manifest = try Self.decodeManifest(members[0].bytes)
        guard manifest.signer.algorithm == "ed25519" else {
            throw .manifestUnreadable("unknown signature algorithm \(manifest.signer.algorithm)")
        }
        let signer = try AgentPublicKey(base64: manifest.signer.publicKey)
        guard signer.isValidSignature(members[1].bytes, for: members[0].bytes) else {
            throw .badSignature(fingerprint: signer.fingerprint)
        }
        if case let .keys(trusted) = trust, !trusted.contains(signer) {
            throw .untrustedKey(fingerprint: signer.fingerprint)
        }
        return (manifest, signer)
    }

    /// The size a tar header at `offset` of `prefix` declares (0 past the end or unreadable: the
    /// member parse then says what is wrong), refused over `limit` before anything is inflated for it.
    private static func declaredSize(_ prefix: [UInt8], at offset: Int, limit: Int) throws(BundleError) -> Int {
        guard offset + USTar.blockSize <= prefix.count else { return 0 }
        let size = USTar.number(prefix[offset ..< offset + USTar.blockSize], 124, 12) ?? 0
        guard size <= limit else { throw .tooLarge("member of \(size) bytes at the head of the archive, more than the limit of \(limit)") }
        return size
    }

    /// The largest manifest ``unverifiedManifest(atPath:)`` reads (a bundle of 1,024 members
    /// has a manifest of about 200 KiB).
    public static let maximumManifestSize = 1 << 20

    /// The manifest of the bundle file at `path`, from its first archive member only: no
    /// signature check and nothing else unpacked. For the agent's own outbox, which needs to know
    /// what each bundle is (its trigger, its device) without the cost of reading it whole; never
    /// for deciding whether to trust a bundle.
    public static func unverifiedManifest(atPath path: String) throws(BundleError) -> BundleManifest {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { throw .unreadableFile(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        // The manifest is the first member and JSON compresses well: 64 KiB of the file hold it
        // in all but huge bundles; those get a second read, up to the limit.
        var compressed: [UInt8] = []
        func readMore(upTo total: Int) throws(BundleError) -> Bool {
            let before = compressed.count
            compressed += [UInt8](repeating: 0, count: total - before)
            var filled = before
            while filled < compressed.count {
                let n = compressed.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw .unreadableFile(path: path, reason: String(cString: strerror(errno))) }
                if n == 0 { break }
                filled += n
            }
            compressed.removeLast(compressed.count - filled)
            return filled == total
        }
        let more = try readMore(upTo: 64 << 10)
        let header = try Gzip.decompressPrefix(compressed, count: USTar.blockSize)
        guard header.count == USTar.blockSize else { throw .truncated("no complete archive header in \(path)") }
        let name = String(decoding: header[0 ..< 100].prefix { $0 != 0 }, as: UTF8.self)
        guard name == "manifest.json" else {
            throw .manifestUnreadable("the first member of \(path) is \(name.isEmpty ? "empty" : name), not manifest.json")
        }
        let sizeField = String(decoding: header[124 ..< 136].prefix { $0 != 0 && $0 != 32 }, as: UTF8.self)
        guard let size = Int(sizeField.trimmingCharacters(in: .whitespaces), radix: 8), size >= 0 else {
            throw .malformedArchive("bad size field in the manifest header of \(path)")
        }
        guard size <= maximumManifestSize else {
            throw .tooLarge("manifest.json of \(path) is \(size) bytes, more than the limit of \(maximumManifestSize)")
        }
        var prefix = try Gzip.decompressPrefix(compressed, count: USTar.blockSize + size)
        if prefix.count < USTar.blockSize + size && more {
            _ = try readMore(upTo: maximumManifestSize + (64 << 10))
            prefix = try Gzip.decompressPrefix(compressed, count: USTar.blockSize + size)
        }
        guard prefix.count == USTar.blockSize + size else { throw .truncated("manifest.json of \(path) is cut short") }
        return try decodeManifest(Array(prefix[USTar.blockSize...]))
    }

    /// Reads the version first, so a newer format gets "upgrade care-agent" rather than a decoding error.
    static func decodeManifest(_ bytes: [UInt8]) throws(BundleError) -> BundleManifest {
        struct VersionOnly: Decodable { var formatVersion: Int }
        let version: Int
        do {
            version = try JSONDecoder().decode(VersionOnly.self, from: Data(bytes)).formatVersion
        } catch {
            throw .manifestUnreadable("no formatVersion: \(Self.reason(error))")
        }
        switch version {
        case 1 ... BundleManifest.currentFormatVersion:
            // Version 1 is the only one so far; a later version adds a case that converts older manifests.
            do {
                return try BundleManifest.decoder().decode(BundleManifest.self, from: Data(bytes))
            } catch {
                throw .manifestUnreadable(Self.reason(error))
            }
        default:
            throw .unsupportedVersion(found: version, supported: BundleManifest.currentFormatVersion)
        }
    }

    /// A one-line reason from a DecodingError.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, context):
            return "missing \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
             let DecodingError.dataCorrupted(context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
