import Foundation
import Testing
@testable import Bundle

/// Damaged bundles never crash the reader and never verify: every mutation gives a BundleError.
@Suite struct ReaderRobustnessTests {
    @Test func randomByteDamageToTheFileIsAlwaysRejected() throws {
        let good = try Sample.encoded()
        let goodArchive = try Gzip.decompress(good, limit: 1 << 30)
        var generator = SystemRandomNumberGenerator()
        for _ in 0 ..< 300 {
            var bytes = good
            for _ in 0 ..< Int.random(in: 1 ... 4, using: &generator) {
                let index = Int.random(in: 0 ..< bytes.count, using: &generator)
                bytes[index] ^= UInt8.random(in: 1 ... 255, using: &generator)
            }
            if bytes == good { continue }
            // gzip's header has fields zlib ignores (mtime, OS, XFL: bytes 4–9), and the last byte
            // of the deflate stream may end in unused bits: damage that leaves the archive as it
            // was is harmless.
            let onlyIgnoredHeaderBytes = (0 ..< bytes.count).filter { bytes[$0] != good[$0] }.allSatisfy { (4 ... 9).contains($0) }
            let sameArchive = (try? Gzip.decompress(bytes, limit: 1 << 30)) == goodArchive
            do {
                _ = try BundleReader().read(bytes: bytes)
                #expect(onlyIgnoredHeaderBytes || sameArchive, "damaged bundle verified")
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }

    /// Damage inside the archive (after decompression) reaches the tar and manifest checks.
    @Test func randomDamageToTheArchiveIsAlwaysRejected() throws {
        let tar = try Gzip.decompress(try Sample.encoded(), limit: 1 << 30)
        var generator = SystemRandomNumberGenerator()
        for round in 0 ..< 300 {
            var bytes = tar
            if round % 3 == 0 {
                bytes = Array(bytes.prefix(Int.random(in: 0 ..< bytes.count - 1024, using: &generator)))
            } else {
                let index = Int.random(in: 0 ..< bytes.count - 1024, using: &generator)
                bytes[index] ^= UInt8.random(in: 1 ... 255, using: &generator)
            }
            let changedPadding = bytes.count == tar.count && {
                let index = (0 ..< tar.count).first { bytes[$0] != tar[$0] }!
                return isPadding(tar, at: index) || sameChecksumValue(tar, bytes, at: index)
            }()
            let compressed = try Gzip.compress(bytes)
            do {
                _ = try BundleReader().read(bytes: compressed)
                #expect(changedPadding, "damaged archive verified (round \(round))")
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }

    /// A change inside a header's checksum field that leaves its number the same (a leading zero
    /// turned into a space, the NUL/space terminator changed): tar readers accept these forms.
    private func sameChecksumValue(_ tar: [UInt8], _ damaged: [UInt8], at index: Int) -> Bool {
        let field = index % 512
        guard (148 ..< 156).contains(field) else { return false }
        let start = index - field + 148
        func value(_ b: [UInt8]) -> Int? {
            Int(String(decoding: b[start ..< start + 6], as: UTF8.self).trimmingCharacters(in: .whitespaces), radix: 8)
        }
        return value(tar) != nil && value(tar) == value(damaged)
    }

    /// Bytes no reader looks at: padding after a member, unused header fields (mtime, uname,
    /// gname, device numbers, mode, uid/gid). Changing these keeps a bundle valid, by design:
    /// the manifest signs content, not tar metadata.
    private func isPadding(_ tar: [UInt8], at index: Int) -> Bool {
        var offset = 0
        while offset + 512 <= tar.count {
            let header = tar[offset ..< offset + 512]
            if header.allSatisfy({ $0 == 0 }) { return index >= offset }
            if index >= offset && index < offset + 512 {
                let field = index - offset
                // name (0..<100), size (124..<136), checksum (148..<156), type (156), magic (257..<263), prefix (345..<500)
                return !((0 ..< 100).contains(field) || (124 ..< 136).contains(field) || (148 ..< 157).contains(field)
                    || (257 ..< 262).contains(field) || (345 ..< 500).contains(field))
            }
            let sizeText = String(decoding: tar[(offset + 124) ..< (offset + 135)], as: UTF8.self)
            let size = Int(sizeText, radix: 8) ?? 0
            let dataEnd = offset + 512 + size
            let paddedEnd = offset + 512 + (size + 511) / 512 * 512
            if index >= dataEnd && index < paddedEnd { return true }
            if index >= offset + 512 && index < dataEnd { return false }
            offset = paddedEnd
        }
        return true
    }
}
