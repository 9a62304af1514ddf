import Crypto

/// One file inside a bundle's tar archive.
public struct ArchiveMember: Sendable, Equatable {
    /// Relative path inside the archive (`raw/get-chassis-inventory.xml`).
    public var name: String
    public var bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

/// Writes and reads POSIX ustar archives in memory. Only regular files are written or accepted:
/// a bundle never needs links, devices or directories, and refusing them keeps a hostile archive
/// from pointing anywhere.
enum USTar {
    static let blockSize = 512

    /// Builds a ustar archive of `members`, all with mode 0644 and modification time `modified`
    /// (seconds since 1970) so the same contents give the same bytes.
    static func archive(_ members: [ArchiveMember], modified: Int) throws(BundleWriteError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(members.reduce(2 * blockSize) { $0 + blockSize + padded($1.bytes.count) })
        for member in members {
            out += try header(for: member, modified: modified)
            out += member.bytes
            out += [UInt8](repeating: 0, count: padded(member.bytes.count) - member.bytes.count)
        }
        // The end-of-archive marker: two zero blocks.
        out += [UInt8](repeating: 0, count: 2 * blockSize)
        return out
    }

    static func padded(_ count: Int) -> Int { (count + blockSize - 1) / blockSize * blockSize }

    private static func header(for member: ArchiveMember, modified: Int) throws(BundleWriteError) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        let (prefix, name) = try split(member.name)
        put(Array(name.utf8), at: 0, width: 100, into: &block)
        put(octal(0o644, width: 8), at: 100, width: 8, into: &block)
        put(octal(0, width: 8), at: 108, width: 8, into: &block)  // uid
        put(octal(0, width: 8), at: 116, width: 8, into: &block)  // gid
        put(octal(member.bytes.count, width: 12), at: 124, width: 12, into: &block)
        put(octal(max(0, modified), width: 12), at: 136, width: 12, into: &block)
        block[156] = UInt8(ascii: "0")  // regular file
        put(Array("ustar\0".utf8), at: 257, width: 6, into: &block)
        put(Array("00".utf8), at: 263, width: 2, into: &block)
        put(Array("care-agent".utf8), at: 265, width: 32, into: &block)  // uname
        put(Array("care-agent".utf8), at: 297, width: 32, into: &block)  // gname
        put(Array(prefix.utf8), at: 345, width: 155, into: &block)
        // The checksum is computed with its own field read as eight spaces.
        put(Array(repeating: UInt8(ascii: " "), count: 8), at: 148, width: 8, into: &block)
        let sum = block.reduce(0) { $0 + Int($1) }
        var field = octal(sum, width: 7)  // six digits, NUL, then a space (the historic layout)
        field.append(UInt8(ascii: " "))
        put(field, at: 148, width: 8, into: &block)
        return block
    }

    /// ustar keeps names over 100 bytes as prefix + "/" + name.
    private static func split(_ path: String) throws(BundleWriteError) -> (String, String) {
        let bytes = Array(path.utf8)
        if bytes.count <= 100 { return ("", path) }
        for (index, byte) in bytes.enumerated().reversed() where byte == UInt8(ascii: "/") {
            if index <= 155 && bytes.count - index - 1 <= 100 && index > 0 {
                return (String(decoding: bytes[..<index], as: UTF8.self),
                        String(decoding: bytes[(index + 1)...], as: UTF8.self))
            }
        }
        throw .invalidContents("member name is too long for a tar archive: \(path)")
    }

    /// `value` in octal, zero-padded to width-1 digits and NUL-terminated.
    private static func octal(_ value: Int, width: Int) -> [UInt8] {
        var digits = Array(String(value, radix: 8).utf8)
        while digits.count < width - 1 { digits.insert(UInt8(ascii: "0"), at: 0) }
        digits.append(0)
        return digits
    }

    private static func put(_ bytes: [UInt8], at offset: Int, width: Int, into block: inout [UInt8]) {
        for (i, byte) in bytes.prefix(width).enumerated() { block[offset + i] = byte }
    }

    /// Reads the members of a ustar archive, refusing anything a bundle would never hold. With
    /// `first`: only that many members, from the start of an archive (`archive` may be a prefix),
    /// with the same checks; fewer when the archive ends first.
    static func members(of archive: [UInt8], limits: BundleReader.Limits, first: Int? = nil) throws(BundleError) -> [ArchiveMember] {
        var members: [ArchiveMember] = []
        var seen = Set<String>()
        var offset = 0
        while first.map({ members.count < $0 }) ?? true {
            guard offset + blockSize <= archive.count else {
                throw .truncated("the archive ends inside a tar header (no end-of-archive marker)")
            }
            let header = archive[offset ..< offset + blockSize]
            if header.allSatisfy({ $0 == 0 }) {
                if first == nil { try checkEnd(of: archive, markerAt: offset) }
                break
            }
            let (name, size) = try member(header, at: offset, limits: limits, count: members.count)
            guard seen.insert(name).inserted else { throw .duplicateMember(name) }
            let start = offset + blockSize
            guard start + size <= archive.count else {
                throw .truncated("member \(name) is cut short: \(size) bytes declared, \(max(0, archive.count - start)) present")
            }
            members.append(ArchiveMember(name: name, bytes: Array(archive[start ..< start + size])))
            offset = start + padded(size)
        }
        return members
    }

    /// The name and size a (non-zero) header block declares, with every check a bundle's member
    /// must pass; `count`: members before it (refused at the member limit).
    static func member(_ header: ArraySlice<UInt8>, at offset: Int, limits: BundleReader.Limits,
                       count: Int) throws(BundleError) -> (name: String, size: Int) {
        let base = header.startIndex
        guard let declared = number(header, 148, 8) else {
            throw .malformedArchive("tar header at byte \(offset) has an unreadable checksum")
        }
        var sum = 0
        for (i, byte) in header.enumerated() { sum += (i >= 148 && i < 156) ? 32 : Int(byte) }
        guard sum == declared else {
            throw .malformedArchive("tar header at byte \(offset) fails its checksum")
        }
        guard header[(base + 257) ..< (base + 262)].elementsEqual("ustar".utf8) else {
            throw .malformedArchive("tar header at byte \(offset) is not ustar")
        }
        let name = joinedName(header)
        try checkName(name)
        let type = header[base + 156]
        guard type == UInt8(ascii: "0") || type == 0 else {
            let typeName = type >= 32 && type < 127 ? String(UnicodeScalar(type)) : "\\(\(type))"
            throw .unsupportedMemberType(name: name, type: typeName)
        }
        guard let size = number(header, 124, 12) else {
            throw .malformedArchive("tar header of \(name) has an unreadable size")
        }
        guard size <= limits.maximumMemberSize else {
            throw .tooLarge("member \(name) is \(size) bytes, more than the limit of \(limits.maximumMemberSize)")
        }
        guard count < limits.maximumMemberCount else {
            throw .tooManyMembers(limit: limits.maximumMemberCount)
        }
        return (name, size)
    }

    /// The end-of-archive marker is two zero blocks and nothing may follow it but zeros (the
    /// padding `tar` adds to fill its last record). Bytes after the marker are covered by no
    /// header and no manifest entry: a doctored bundle could carry anything there, and a tool
    /// that unpacks with another tar implementation might read it as members.
    static func checkEnd(of archive: [UInt8], markerAt offset: Int) throws(BundleError) {
        let second = offset + blockSize
        guard second + blockSize <= archive.count else {
            throw .truncated("the end-of-archive marker at byte \(offset) is a single zero block (two are required)")
        }
        if let extra = archive[second...].firstIndex(where: { $0 != 0 }) {
            let trailing = archive.count - (second + blockSize)
            throw .trailingData(markerOffset: offset, firstByte: extra, count: trailing)
        }
    }

    private static func joinedName(_ header: ArraySlice<UInt8>) -> String {
        let base = header.startIndex
        let name = text(header[base ..< base + 100])
        let prefix = text(header[(base + 345) ..< (base + 500)])
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    private static func text(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix(while: { $0 != 0 }), as: UTF8.self)
    }

    /// An octal field (leading spaces or zeros, ended by NUL or space). Nil when not octal.
    static func number(_ header: ArraySlice<UInt8>, _ offset: Int, _ width: Int) -> Int? {
        let base = header.startIndex + offset
        let field = header[base ..< base + width]
        let digits = field.drop(while: { $0 == UInt8(ascii: " ") })
            .prefix(while: { $0 != 0 && $0 != UInt8(ascii: " ") })
        guard !digits.isEmpty, digits.count <= 11 else { return nil }
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "7") else { return nil }
            value = value * 8 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }

    /// Refuses names that could reach outside the directory an archive is unpacked into with `tar x`.
    static func checkName(_ name: String) throws(BundleError) {
        if name.isEmpty || name.hasPrefix("/") || name.contains("\\") || name.utf8.contains(0) {
            throw .unsafeMemberName(name)
        }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) {
            throw .unsafeMemberName(name)
        }
    }
}

extension USTar {
    /// A member read by ``StreamReader``: its size and SHA-256, its bytes only when kept.
    struct StreamedMember: Sendable {
        var name: String
        var size: Int
        var sha256: String
        var bytes: [UInt8]? = nil
    }

    /// Reads a ustar archive fed in pieces as it inflates, with the checks and errors of
    /// ``members(of:limits:first:)`` and ``checkEnd(of:markerAt:)``, hashing every member and
    /// keeping the bytes only of those named in `keep` (each at most its size there). What it holds
    /// is a header block and the kept members, whatever the size of the archive: a verification
    /// of a bundle whose raw replies unpack to hundreds of megabytes needs nothing for them.
    /// Where a damaged archive has several faults, the first one reported may differ from the
    /// whole read's (which inflates everything before it parses anything).
    struct StreamReader {
        let limits: BundleReader.Limits
        /// The members kept in memory, each with the largest size kept: a hostile archive's
        /// "facts.json" of 500 MiB of zeros (half a megabyte gzipped) is refused at its header,
        /// not held.
        let keep: [String: Int]
        private(set) var members: [StreamedMember] = []
        private var seen = Set<String>()
        /// Archive bytes consumed so far.
        private var offset = 0
        private var block: [UInt8] = []
        private enum State {
            case header
            case content(name: String, size: Int, remaining: Int)
            case padding(Int)
            /// After the first zero block at `markerAt`: everything from here on must be zeros.
            case end(markerAt: Int)
        }
        private var state = State.header
        private var hasher = SHA256()
        private var kept: [UInt8]?
        private var firstNonZeroAfterMarker: Int?

        init(limits: BundleReader.Limits, keep: [String: Int]) {
            self.limits = limits
            self.keep = keep
        }

        mutating func feed(_ bytes: ArraySlice<UInt8>) throws(BundleError) {
            var rest = bytes
            while !rest.isEmpty {
                switch state {
                case .header:
                    let take = rest.prefix(USTar.blockSize - block.count)
                    block.append(contentsOf: take)
                    rest = rest.dropFirst(take.count)
                    guard block.count == USTar.blockSize else { continue }
                    let at = offset
                    offset += USTar.blockSize
                    if block.allSatisfy({ $0 == 0 }) {
                        state = .end(markerAt: at)
                    } else {
                        let (name, size) = try USTar.member(block[...], at: at, limits: limits, count: members.count)
                        guard seen.insert(name).inserted else { throw .duplicateMember(name) }
                        hasher = SHA256()
                        if let keptLimit = keep[name] {
                            guard size <= keptLimit else {
                                throw .tooLarge("member \(name) is \(size) bytes, more than the limit of \(keptLimit) for a member read into memory")
                            }
                            kept = []
                            kept?.reserveCapacity(min(size, 1 << 20))
                        } else {
                            kept = nil
                        }
                        state = .content(name: name, size: size, remaining: size)
                        if size == 0 { finishMember() }
                    }
                    block.removeAll(keepingCapacity: true)
                case let .content(name, size, remaining):
                    let take = rest.prefix(remaining)
                    take.withUnsafeBytes { hasher.update(bufferPointer: $0) }
                    kept?.append(contentsOf: take)
                    rest = rest.dropFirst(take.count)
                    offset += take.count
                    state = .content(name: name, size: size, remaining: remaining - take.count)
                    if remaining == take.count { finishMember() }
                case let .padding(count):
                    let take = min(count, rest.count)
                    rest = rest.dropFirst(take)
                    offset += take
                    state = count == take ? .header : .padding(count - take)
                case .end:
                    if firstNonZeroAfterMarker == nil, let index = rest.firstIndex(where: { $0 != 0 }) {
                        firstNonZeroAfterMarker = offset + (index - rest.startIndex)
                    }
                    offset += rest.count
                    rest = rest.dropFirst(rest.count)
                }
            }
        }

        private mutating func finishMember() {
            guard case let .content(name, size, _) = state else { return }
            members.append(StreamedMember(name: name, size: size, sha256: BundleWriter.hex(hasher.finalize()), bytes: kept))
            kept = nil
            let padding = USTar.padded(size) - size
            state = padding == 0 ? .header : .padding(padding)
        }

        /// The members, once the whole archive has been fed; the errors of a cut or doctored end.
        func finish() throws(BundleError) -> [StreamedMember] {
            switch state {
            case .header, .padding:
                throw .truncated("the archive ends inside a tar header (no end-of-archive marker)")
            case let .content(name, size, remaining):
                throw .truncated("member \(name) is cut short: \(size) bytes declared, \(size - remaining) present")
            case let .end(marker):
                let second = marker + USTar.blockSize
                guard offset >= second + USTar.blockSize else {
                    throw .truncated("the end-of-archive marker at byte \(marker) is a single zero block (two are required)")
                }
                if let extra = firstNonZeroAfterMarker {
                    throw .trailingData(markerOffset: marker, firstByte: extra, count: offset - (second + USTar.blockSize))
                }
                return members
            }
        }
    }
}
