import CLibSSH2
import Glibc
import Testing

/// A libssh2 session holds only the pages it writes into: the zeroed packet buffers it embeds
/// are given back after set-up (`care_release_zero_pages`), without changing what they read.
@Suite struct SessionMemoryTests {
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Resident pages among the whole pages of [pointer, pointer + length).
    func residentPages(_ pointer: UnsafeMutableRawPointer, _ length: Int) throws -> Int {
        let start = (Int(bitPattern: pointer) + Self.page - 1) / Self.page * Self.page
        let end = (Int(bitPattern: pointer) + length) / Self.page * Self.page
        let count = (end - start) / Self.page
        var vector = [UInt8](repeating: 0, count: count)
        let status = mincore(UnsafeMutableRawPointer(bitPattern: start), end - start, &vector)
        try #require(status == 0, "mincore: errno \(errno)")
        return vector.filter { $0 & 1 == 1 }.count
    }

    @Test func zeroPagesAreGivenBackAndStillReadAsZero() throws {
        let pages = 16, length = pages * Self.page
        var raw: UnsafeMutableRawPointer?
        try #require(posix_memalign(&raw, Self.page, length) == 0)
        let buffer = try #require(raw)
        defer { free(buffer) }
        memset(buffer, 0, length)
        buffer.storeBytes(of: 0x5A, toByteOffset: 3 * Self.page + 17, as: UInt8.self)
        #expect(try residentPages(buffer, length) == pages)

        let released = care_release_zero_pages(buffer, length)

        #expect(released == (pages - 1) * Self.page)
        #expect(try residentPages(buffer, length) == 1, "only the page with a non-zero byte stays")
        // Written again, a given-back page is an ordinary page.
        buffer.storeBytes(of: 7, toByteOffset: 9 * Self.page, as: UInt8.self)
        #expect(try residentPages(buffer, length) == 2)
        // (Reading maps the kernel's shared zero page, which mincore counts: so read last.)
        let bytes = UnsafeRawBufferPointer(start: buffer, count: length)
        let expected: [Int: UInt8] = [3 * Self.page + 17: 0x5A, 9 * Self.page: 7]
        #expect(bytes.enumerated().allSatisfy { $0.element == expected[$0.offset, default: 0] })
    }

    @Test func partialPagesAtTheEdgesAreKept() throws {
        let length = 4 * Self.page
        var raw: UnsafeMutableRawPointer?
        try #require(posix_memalign(&raw, Self.page, length) == 0)
        let buffer = try #require(raw)
        defer { free(buffer) }
        memset(buffer, 0, length)
        // From mid-page to mid-page: only the two whole pages inside may go.
        #expect(care_release_zero_pages(buffer + 100, length - 200) == 2 * Self.page)
        #expect(try residentPages(buffer, length) == 2)
    }

    @Test func aNewSessionHoldsLessThanItsSize() throws {
        _ = libssh2_init(0)
        let session = try #require(care_ssh2_session_init(nil))
        defer { libssh2_session_free(session) }
        let pointer = UnsafeMutableRawPointer(session)
        let size = malloc_usable_size(pointer)
        // libssh2 1.10's session embeds 16 KiB + 35,000 bytes of packet buffers.
        #expect(size > 48 * 1024)
        let resident = try residentPages(pointer, size) * Self.page
        #expect(resident <= size - 32 * 1024, "\(resident) of \(size) bytes resident")
    }
}
