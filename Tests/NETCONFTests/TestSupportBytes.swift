import TestSupport

enum TestSupportBytes {
    static func fixture(_ path: String) throws -> [UInt8] { try Fixtures.bytes(path) }
}
