import Foundation
import TestSupport

/// An agent.conf for a service under test: its directories under `dir`, devices on one sshd.
func writeServiceConfiguration(_ h: SSHDHarness, dir: URL, devices: [String], defaults: String = "schedule = manual") throws -> String {
    let path = dir.appendingPathComponent("agent.conf").path
    var text = """
    [agent]
    outbox = \(dir.path)/outbox
    state-directory = \(dir.path)/state
    runtime-directory = \(dir.path)/run
    [defaults]
    user = \(h.user)
    key-file = \(h.clientKeys["ed25519"]!)
    known-hosts = \(h.knownHostsPath)
    \(defaults)

    """
    for device in devices {
        text += "[device \(device)]\nhost = \(h.addresses[0])\nport = \(h.port)\n"
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
