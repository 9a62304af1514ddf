import Crypto
import Foundation
@testable import SSH
import Testing
import TestSupport

/// Keys parsed once for signing authentications: the public key blob must be what `ssh-keygen`
/// wrote in the .pub file, and the signature must verify with that public key.
@Suite struct SSHSigningKeyTests {
    func keygen(_ dir: URL, _ name: String, _ arguments: [String]) throws -> (privateKey: [UInt8], publicBlob: [UInt8]) {
        let path = dir.appendingPathComponent(name).path
        let status = try ChildProcess("/usr/bin/ssh-keygen", ["-q", "-f", path, "-C", name] + arguments).wait()
        try #require(status == 0)
        let pub = try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ")
        return ([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), [UInt8](try #require(Data(base64Encoded: String(pub[1])))))
    }

    func field(_ reader: inout SSHWireReader) throws -> [UInt8] {
        let value = reader.string()
        return try #require(value)
    }

    /// `mpint r, mpint s` back to the fixed-size r || s swift-crypto verifies.
    func rawECDSA(_ blob: [UInt8], size: Int) throws -> [UInt8] {
        var reader = SSHWireReader(blob)
        let first = reader.string(), second = reader.string()
        let r = try #require(first), s = try #require(second)
        #expect(reader.offset == blob.count)
        func fixed(_ m: [UInt8]) -> [UInt8] {
            let v = Array(m.drop(while: { $0 == 0 }))
            return [UInt8](repeating: 0, count: size - v.count) + v
        }
        return fixed(r) + fixed(s)
    }

    @Test func signaturesVerifyWithThePublicKeySSHKeygenWrote() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = [UInt8]("session id and userauth request".utf8)
        for (name, arguments, type) in [("ed", ["-t", "ed25519"], "ssh-ed25519"), ("p256", ["-t", "ecdsa", "-b", "256"], "ecdsa-sha2-nistp256"),
                                        ("p384", ["-t", "ecdsa", "-b", "384"], "ecdsa-sha2-nistp384"),
                                        ("p521", ["-t", "ecdsa", "-b", "521"], "ecdsa-sha2-nistp521"),
                                        ("p256-pem", ["-t", "ecdsa", "-m", "PEM"], "ecdsa-sha2-nistp256"),
                                        ("p384-pkcs8", ["-t", "ecdsa", "-b", "384", "-m", "PKCS8"], "ecdsa-sha2-nistp384")] {
            let (privateKey, publicBlob) = try keygen(dir, name, arguments + ["-N", ""])
            let key = try #require(SSHSigningKey(privateKey: privateKey), "\(name)")
            #expect(key.type == type, "\(name)")
            #expect(key.publicKeyBlob == publicBlob, "\(name)")
            let signature = try data.withUnsafeBytes { try key.sign($0) }
            var reader = SSHWireReader(publicBlob)
            _ = reader.string()
            switch type {
            case "ssh-ed25519":
                let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: try field(&reader))
                #expect(publicKey.isValidSignature(signature, for: data))
            case "ecdsa-sha2-nistp256":
                _ = reader.string()
                let publicKey = try P256.Signing.PublicKey(x963Representation: try field(&reader))
                let raw = try P256.Signing.ECDSASignature(rawRepresentation: try rawECDSA(signature, size: 32))
                #expect(publicKey.isValidSignature(raw, for: data), "\(name)")
            case "ecdsa-sha2-nistp384":
                _ = reader.string()
                let publicKey = try P384.Signing.PublicKey(x963Representation: try field(&reader))
                let raw = try P384.Signing.ECDSASignature(rawRepresentation: try rawECDSA(signature, size: 48))
                #expect(publicKey.isValidSignature(raw, for: data), "\(name)")
            default:
                _ = reader.string()
                let publicKey = try P521.Signing.PublicKey(x963Representation: try field(&reader))
                let raw = try P521.Signing.ECDSASignature(rawRepresentation: try rawECDSA(signature, size: 66))
                #expect(publicKey.isValidSignature(raw, for: data), "\(name)")
            }
        }
    }

    /// RSA and encrypted keys are libssh2's to read; broken input is no key, never a crash.
    @Test func otherKeysAndBrokenInputAreLeftToLibSSH2() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(SSHSigningKey(privateKey: try keygen(dir, "rsa", ["-t", "rsa", "-b", "2048", "-N", ""]).privateKey) == nil)
        #expect(SSHSigningKey(privateKey: try keygen(dir, "enc", ["-t", "ed25519", "-N", "secret words"]).privateKey) == nil)
        #expect(SSHSigningKey(privateKey: try keygen(dir, "enc-ec", ["-t", "ecdsa", "-N", "secret words"]).privateKey) == nil)
        var good = try keygen(dir, "ed", ["-t", "ed25519", "-N", ""]).privateKey
        // Cut anywhere: never a key, never a trap.
        let text = String(decoding: good, as: UTF8.self)
        let body = text.split(separator: "\n").dropFirst().dropLast().joined()
        let blob = [UInt8](try #require(Data(base64Encoded: body)))
        for cut in stride(from: 0, to: blob.count, by: 7) {
            let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\n\(Data(blob.prefix(cut)).base64EncodedString())\n-----END OPENSSH PRIVATE KEY-----\n"
            #expect(SSHSigningKey(privateKey: Array(pem.utf8)) == nil, "cut at \(cut)")
        }
        good.removeAll()
        #expect(SSHSigningKey(privateKey: good) == nil)
        #expect(SSHSigningKey(privateKey: Array("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".utf8)) == nil)
    }
}
