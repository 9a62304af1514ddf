import ArgumentParser
import Bundle
import Foundation
import SupportServer
import SupportStore
import Logging

struct CustomerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customer", abstract: "Add and list customers.",
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a customer (letters, digits, '.', '_', '-').")
        @Argument var name: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                // ACME and acme would be two customers whose tokens, bundles and reports are
                // told apart only by case: a typo away from handing one the other's.
                if let similar = try await database.customers().first(where: { $0.name != name && $0.name.lowercased() == name.lowercased() }) {
                    throw CommandFailure("customer \(similar.name) exists: names that differ only in case are refused")
                }
                _ = try await database.addCustomer(name, at: Date())
                print("added customer \(name)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List customers.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                for customer in try await database.customers() { print(customer.name) }
            }
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke a customer's upload tokens.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an upload token; it is printed once, alone on the last line, and stored only hashed.")
        @Argument var customer: String
        @Flag(help: "A read-only token for the customer's views under /api/v1/ instead of an upload token.")
        var read = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                let (id, token) = UploadToken.generate()
                try await database.addToken(customer: customer, id: id, hash: UploadToken.hash(token), scope: read ? .read : .upload, at: Date())
                let use = read ? "read-only API token" : "upload token; put it in the agent's token-file"
                print("token \(id) for \(customer) (\(use); shown once; revoke with `care-support token revoke \(customer) \(id)`):")
                print(token)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a customer's tokens by id (the tokens themselves are not kept).")
        @Argument var customer: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                for token in try await database.tokens(customer: customer) {
                    let state = token.revoked.map { "revoked \(SupportJSON.time($0))" } ?? "live"
                    print("\(token.id)  \(token.scope.rawValue)  created \(SupportJSON.time(token.created))  \(state)")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token: uploads with it get 401 from now on.")
        @Argument var customer: String
        @Argument(help: "The token's id (the part before the '.', as `token list` shows it), or the whole token.")
        var token: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let id = String(token.split(separator: ".", maxSplits: 1).first ?? "")
            try await withStore(options) { _, database in
                guard try await database.revokeToken(customer: customer, id: id, at: Date()) else {
                    throw CommandFailure("customer \(customer) has no live token \(id) (see `care-support token list \(customer)`)")
                }
                print("revoked token \(id) of \(customer)")
            }
        }
    }
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Trust, revoke and list the agent keys that may sign a customer's bundles.",
        subcommands: [Trust.self, Revoke.self, List.self, Pending.self, Approve.self])

    static func key(_ text: String) throws -> AgentPublicKey {
        do {
            return try AgentPublicKey(base64: text)
        } catch {
            throw CommandFailure("\(error): give the key as `care-agent key show` prints it after \"public key:\"")
        }
    }

    struct Trust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trust an agent's key for a customer.")
        @Argument var customer: String
        @Option(help: "The agent's public key, base64, as `care-agent key show` prints it.")
        var key: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let key = try AgentCommand.key(key)
            try await withStore(options) { _, database in
                try await AgentCommand.refuseIfTrustedElsewhere(key, for: customer, database: database)
                let added = try await database.trustKey(customer: customer, key: key, at: Date())
                print(added ? "trusted \(key.fingerprint) for \(customer)" : "\(key.fingerprint) is trusted for \(customer) already")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop trusting an agent's key: its bundles get 403 from now on.")
        @Argument var customer: String
        @Option(help: "The agent's public key, base64.")
        var key: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let key = try AgentCommand.key(key)
            try await withStore(options) { _, database in
                guard try await database.revokeKey(customer: customer, key: key, at: Date()) else {
                    throw CommandFailure("\(key.fingerprint) is not trusted for \(customer)")
                }
                print("revoked \(key.fingerprint) for \(customer)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a customer's agent keys.")
        @Argument var customer: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                for record in try await database.keys(customer: customer) {
                    let state = record.revoked.map { "revoked \(SupportJSON.time($0))" } ?? "trusted"
                    print("\(record.key.fingerprint)  \(record.key.base64)  \(state)")
                }
            }
        }
    }
}

extension AgentCommand {
    /// An agent uploads for one customer (its token's): its key trusted for a second one would
    /// file that customer's devices, and reports on them, under both.
    static func refuseIfTrustedElsewhere(_ key: AgentPublicKey, for customer: String, database: any SupportDatabase) async throws {
        for other in try await database.customers() where other.name != customer {
            if try await database.keys(customer: other.name).contains(where: { $0.key == key && $0.revoked == nil }) {
                throw CommandFailure("\(key.fingerprint) is trusted for customer \(other.name): an agent's bundles belong to one customer; "
                    + "if it moved, first: care-support agent revoke \(other.name) --key \(key.base64)")
            }
        }
    }

    struct Pending: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keys that signed uploads without being trusted (with enrollment = pending), waiting for approval.")
        @Argument(help: "Only this customer's.") var customer: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                for record in try await database.pendingKeys(customer: customer) {
                    // Agent and device names come from unapproved, self-signed uploads: escaped.
                    print([record.customer, record.key.fingerprint, "agent \(record.agent)", "device \(record.device)",
                           "\(record.uploads) upload(s)", "first \(SupportJSON.time(record.firstSeen))",
                           "last \(SupportJSON.time(record.lastSeen))"].map(TerminalText.escaped).joined(separator: "  "))
                }
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Trust a pending key (the agent's next retry is stored).")
        @Argument var customer: String
        @Argument(help: "The key's fingerprint, as `agent pending` shows it (SHA256:...).") var fingerprint: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                guard let pending = try await database.pendingKeys(customer: customer).first(where: { $0.key.fingerprint == fingerprint }) else {
                    throw CommandFailure("no pending key \(fingerprint) for \(customer) (see `care-support agent pending \(customer)`)")
                }
                // A revoked key is trusted again only by name, deliberately: not by approving
                // what an upload put on the pending list.
                if let revoked = try await database.keys(customer: customer).first(where: { $0.key == pending.key })?.revoked {
                    throw CommandFailure("\(fingerprint) was revoked for \(customer) on \(SupportJSON.time(revoked)): to trust it again, "
                        + "care-support agent trust \(customer) --key \(pending.key.base64)")
                }
                try await AgentCommand.refuseIfTrustedElsewhere(pending.key, for: customer, database: database)
                _ = try await database.trustKey(customer: customer, key: pending.key, at: Date())
                print("trusted \(fingerprint) for \(customer) (agent \(pending.agent))")
            }
        }
    }
}

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Database maintenance.", subcommands: [Migrate.self, Prune.self])

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the schema migrations not applied yet.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let configuration = try options.load()
            let database: any SupportDatabase
            do {
                database = try await configuration.store.database.open()
            } catch {
                throw CommandFailure(error.description)
            }
            do {
                let applied = try await database.migrate()
                let version = try await database.schemaVersion()
                await database.close()
                print(applied.isEmpty ? "\(configuration.store.database): schema version \(version), up to date"
                      : "\(configuration.store.database): applied \(applied.map(String.init).joined(separator: ", ")); schema version \(version)")
            } catch {
                await database.close()
                throw CommandFailure(error.description)
            }
        }
    }
}

struct CertificateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certificate",
        abstract: "Allow, revoke and list the client-certificate subjects that may upload for a customer (mutual TLS; needs client-ca).",
        subcommands: [Allow.self, Revoke.self, List.self])

    struct Allow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let a client certificate with this subject (and, pinned, this public key) upload for a customer.",
            discussion: "With a client-ca that is not the intake's alone (a company's CA issues any subject to anyone who asks), pin the key: --certificate reads subject and key from the agent's certificate.")
        @Argument var customer: String
        @Option(help: "The subject as `openssl x509 -noout -subject -nameopt RFC2253` prints it, e.g. CN=agent-1,O=ACME.")
        var subject: String?
        @Option(help: "The agent's client certificate (PEM): its subject, pinned to its public key.")
        var certificate: String?
        @Option(name: .customLong("public-key-sha256"),
                help: "Pin to this public key: sha256//BASE64 of its SubjectPublicKeyInfo (curl's --pinnedpubkey form).")
        var publicKeySHA256: String?
        @Flag(help: "Unpin: any public key its CA signed (without this or a pin, a pinned subject stays pinned).")
        var anyKey = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            var subject = self.subject
            var pin: SubjectPin = anyKey ? .anyKey : .unchanged
            if let given = publicKeySHA256 {
                guard !anyKey else { throw CommandFailure("--any-key and --public-key-sha256 contradict each other") }
                guard let normalized = ClientAccess.normalizedPin(given) else {
                    throw CommandFailure("expected --public-key-sha256 as sha256//BASE64 (the SHA-256 of the SubjectPublicKeyInfo), found \"\(given.prefix(80))\"")
                }
                pin = .key(normalized)
            }
            if let certificate {
                let read: ClientCertificate
                do { read = try ClientCertificate.read(pemFile: certificate) } catch {
                    throw CommandFailure("cannot read the certificate \(certificate): \(error)")
                }
                if let subject, subject != read.subject {
                    throw CommandFailure("--subject \(subject) is not the certificate's subject, \(read.subject)")
                }
                guard let key = read.publicKeySHA256 else { throw CommandFailure("cannot read the public key of \(certificate)") }
                if case let .key(given) = pin, given != key {
                    throw CommandFailure("--public-key-sha256 is not the public key of \(certificate) (\(key))")
                }
                guard !anyKey else { throw CommandFailure("--any-key and --certificate contradict each other (give --subject to unpin)") }
                subject = read.subject
                pin = .key(key)
            }
            guard let subject else { throw CommandFailure("give --subject or --certificate") }
            guard subject.contains("="), subject.count <= 1024 else {
                throw CommandFailure("expected a subject such as CN=agent-1,O=ACME, found \"\(subject.prefix(80))\"")
            }
            try await withStore(options) { configuration, database in
                let added = try await database.allowSubject(customer: customer, subject: subject, pin: pin, at: Date())
                let now = try await database.subjects(customer: customer).first { $0.subject == subject }?.publicKeySHA256
                let key = now.map { " with public key \($0)" } ?? " (any public key its CA signed)"
                print(added ? "allowed \(subject)\(key) for \(customer)" : "\(subject)\(key) is allowed for \(customer) already")
                if configuration.server.clientCA == nil {
                    print("note: \(configuration.path) has no client-ca in [server], so no client certificate is asked for")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop accepting a client-certificate subject: its uploads get 401.")
        @Argument var customer: String
        @Option(help: "The subject, as allowed.") var subject: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                guard try await database.revokeSubject(customer: customer, subject: subject, at: Date()) else {
                    throw CommandFailure("\(subject) is not allowed for \(customer)")
                }
                print("revoked \(subject) for \(customer)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a customer's client-certificate subjects.")
        @Argument var customer: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { _, database in
                for record in try await database.subjects(customer: customer) {
                    let state = record.revoked.map { "revoked \(SupportJSON.time($0))" } ?? "allowed"
                    print("\(record.subject)  \(state)  \(record.publicKeySHA256 ?? "any key")")
                }
            }
        }
    }
}

extension DatabaseCommand {
    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply retention now: delete bundles older than their customer's keep (never a device's latest).")
        @Option(help: "Keep unreferenced files written less than this many seconds ago (an intake may be storing them).")
        var grace = 600
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStore(options) { configuration, database in
                let files = try BundleFileStore(directory: configuration.store.directory)
                let outcome = try await Retention(configuration: configuration, database: database, files: files,
                                                  logger: Logger(label: "care-support"), grace: TimeInterval(grace)).run()
                for (customer, ids) in outcome.bundles.sorted(by: { $0.key < $1.key }) {
                    print("\(customer): deleted \(ids.count) bundle(s)")
                }
                print("removed \(outcome.files) file(s)")
            }
        }
    }
}
