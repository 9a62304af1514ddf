import Foundation

/// Files holding secrets: passwords, key passphrases, upload tokens, SSH private keys. A secret
/// another local user can read is no longer a secret, so such files are refused, as OpenSSH
/// refuses a private key other users can read, with the `chmod` that fixes it in the message.
///
/// The rule is OpenSSH's (`sshkey_perm_ok`), extended to "others": a file owned by the user
/// running care-agent must have no group or other permissions (0600 or 0400); a file owned by
/// someone else (root:care-agent 0640, systemd credentials), or by root with a group other than
/// root's when root runs it (the same file), must have no permissions for others.
public enum SecretFile {
    /// Why a secret file is refused.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var what: String
        public var path: String
        public var mode: UInt32
        public var ownedByUs: Bool

        public init(what: String, path: String, mode: UInt32, ownedByUs: Bool) {
            self.what = what
            self.path = path
            self.mode = mode
            self.ownedByUs = ownedByUs
        }

        public var description: String {
            let who = ownedByUs ? "other users" : "every local user"
            let fix = ownedByUs ? "chmod 600 \(path)" : "chmod o-rwx \(path)"
            return "refusing the \(what) \(path): its mode \(String(format: "%04o", mode)) lets \(who) read or change it; run: \(fix)"
        }
    }

    /// Refuses `path` when its permissions are too open (see ``SecretFile``). Missing or
    /// unreadable files pass: reading them reports that.
    public static func checkPermissions(_ path: String, what: String) throws(Refusal) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        let mode = UInt32(info.st_mode) & 0o7777
        // Root reading the installed root:care-agent 0640 files (a standalone run, `rpc`) holds
        // them to the rule the agent's user does: its group is the one they are shared with.
        let ownedByUs = info.st_uid == geteuid() && !(info.st_uid == 0 && info.st_gid != 0)
        let tooOpen = ownedByUs ? mode & 0o077 != 0 : mode & 0o007 != 0
        if tooOpen { throw Refusal(what: what, path: path, mode: mode, ownedByUs: ownedByUs) }
    }

    /// The first line of a secret file, without its line end (`\n` or `\r\n`); nil when the file
    /// cannot be read. Throws when its permissions are too open.
    public static func firstLine(_ path: String, what: String) throws(Refusal) -> String? {
        try checkPermissions(path, what: what)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        // isNewline also splits "\r\n", which Swift treats as one Character.
        return String(String(decoding: data, as: UTF8.self).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).first ?? "")
    }
}
