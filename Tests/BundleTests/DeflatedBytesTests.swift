import Bundle
import Foundation
import Testing
import TestSupport

/// Replies held deflated while a collection runs must come back byte for byte, and smaller.
@Suite struct DeflatedBytesTests {
    @Test func everyFixtureComesBackWholeAndSmaller() throws {
        var total = 0, stored = 0, files = 0
        let root = Fixtures.directory
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        where url.pathExtension == "xml" {
            let bytes = [UInt8](try Data(contentsOf: url))
            let held = DeflatedBytes(bytes)
            #expect(held.count == bytes.count)
            #expect(held.bytes == bytes, "\(url.lastPathComponent)")
            total += bytes.count
            stored += held.storedCount
            files += 1
        }
        #expect(files > 100)
        // XML shrinks about four times.
        #expect(stored * 3 < total, "\(stored) of \(total) bytes held")
        // And the memory held is that small too, not a buffer sized for the worst case.
        let big = [UInt8](try Data(contentsOf: Fixtures.url("get-configuration/" + (try FileManager.default.contentsOfDirectory(atPath: Fixtures.url("get-configuration").path).filter { $0.hasSuffix(".xml") }.sorted().last!))))
        #expect(DeflatedBytes(big).heldCapacity * 2 < big.count)
    }

    @Test func smallAndIncompressibleBytesAreKeptAsTheyAre() {
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for bytes in [[], [1, 2, 3], noise, Array(repeating: 7, count: 1 << 20)] as [[UInt8]] {
            let held = DeflatedBytes(bytes)
            #expect(held.bytes == bytes)
            #expect(held.storedCount <= bytes.count)
        }
        #expect(DeflatedBytes(noise).storedCount == noise.count)
        #expect(DeflatedBytes(Array(repeating: 7, count: 1 << 20)).storedCount < 10_000)
    }
}
