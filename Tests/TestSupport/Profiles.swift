import Foundation

/// Device profiles for tests, made from the real captures in Tests/Fixtures.
public enum TestProfiles {
    /// An MX480 dual-RE device: software, inventory, routing engines, environment, alarms, configuration.
    public static let mx480: [String: String] = [
        "get-software-information": "get-software-information/pyez__mx480-dual-re-15.1F5.xml",
        "get-chassis-inventory": "get-chassis-inventory/pyez__mx480-15.1F5-mpc-optics.xml",
        "get-route-engine-information": "get-route-engine-information/pyez__mx480-dual-re-15.1F5.xml",
        "get-environment-information": "get-environment-information/jexp__mx-anon.xml",
        "get-alarm-information": "get-alarm-information/jsnapy__one-minor-plane-offline.xml",
        "get-configuration": "get-configuration/pyez__firefly-full-12.1X46-md5crypt.xml",
    ]

    /// Writes a profile directory (`<rpc>.xml` files) under `parent` and returns its path.
    public static func write(_ files: [String: String], named name: String, under parent: URL) throws -> String {
        let dir = parent.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (rpc, fixture) in files {
            try FileManager.default.copyItem(at: Fixtures.url(fixture), to: dir.appendingPathComponent("\(rpc).xml"))
        }
        chmod(dir.path, 0o755)
        return dir.path
    }

    /// A fresh temporary directory readable by the sshd test user.
    public static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("care-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        chmod(dir.path, 0o755)
        return dir
    }
}
