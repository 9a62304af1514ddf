import Bundle
import Foundation

extension DeviceProfile {
    /// The device a health bundle was collected from: the bundle is read and verified (hashes, and
    /// the signature against `trust`), then each `raw/<rpc>.xml` becomes the reply to `<rpc>`,
    /// exactly as stored. An `rpc-error` the device gave is stored, so it is replayed too; RPCs
    /// that failed without a reply are absent and get Junos's unknown-RPC error.
    public init(bundleFile: URL, trust: BundleTrust = .embeddedKey) throws(SimulatorError) {
        let bundle: VerifiedBundle
        do {
            bundle = try BundleReader(trust: trust, decodesFacts: false).read(contentsOf: bundleFile)
        } catch {
            throw .profile(path: bundleFile.path, message: "\(error)")
        }
        let device = bundle.manifest.device
        try self.init(name: device.hostname ?? device.name, bundleMembers: bundle.members.map { ($0.name, $0.bytes) })
    }
}
