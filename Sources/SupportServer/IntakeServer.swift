import Bundle
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import SupportStore
import X509

/// A request's context on the intake: Hummingbird's core context plus the channel, from which
/// the client certificate (mutual TLS) is read when the intake has a `client-ca`.
public struct IntakeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The client certificate TLS verified against `client-ca`, if one was presented.
    func clientCertificate() async -> ClientCertificate? {
        guard let certificate = try? await channel.nioSSL_peerCertificate().get(),
              let der = try? certificate.toDERBytes(),
              let parsed = try? Certificate(derEncoded: der) else { return nil }
        return ClientCertificate(parsed)
    }
}

/// What the intake checks of a client certificate: its subject (RFC 4514) and the pin of its
/// public key (``ClientAccess/pin(subjectPublicKeyInfo:)``).
public struct ClientCertificate: Sendable, Equatable {
    public var subject: String
    public var publicKeySHA256: String?

    public init(subject: String, publicKeySHA256: String?) {
        self.subject = subject
        self.publicKeySHA256 = publicKeySHA256
    }

    init(_ certificate: Certificate) {
        subject = certificate.subject.description
        publicKeySHA256 = (try? certificate.publicKey.serializeAsPEM().derBytes).map { ClientAccess.pin(subjectPublicKeyInfo: $0) }
    }

    /// Reads a PEM certificate file (what `care-support certificate allow --certificate` takes).
    public static func read(pemFile path: String) throws -> ClientCertificate {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return ClientCertificate(try Certificate(pemEncoded: text))
    }
}

/// Why the server could not start.
public struct IntakeServerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The HTTPS intake: `PUT <base-path><bundle file name>` with `Authorization: Bearer TOKEN`,
/// exactly what the agent's uploader sends. The body is streamed to a temporary file under the
/// size limit, then handed to ``BundleIntake``.
///
/// Answers: 201 stored; 200 stored already (same bundle id and bytes) or 409 (same id, other
/// bytes); 400 bad request (name, digest header); 401 no valid token; 403 signer not trusted for
/// the customer; 413 too large; 422 a bundle that does not verify; 503 the store is unavailable.
/// Every answer's body is one line saying why.
public enum IntakeServer {
    /// The application serving `configuration.server` with `intake`.
    public static func application(configuration: SupportConfiguration, intake: BundleIntake, reports: CustomerReports? = nil, logger: Logger,
                                   onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        throws(IntakeServerError) -> some ApplicationProtocol {
        try configuration.validateForServingOrThrow()
        // HEAD as GET without the body: monitoring probes and link checkers ask with it.
        let router = Router(context: IntakeRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: SecurityHeaders())
        let server = configuration.server
        let basePath = server.basePath
        let mutualTLS = server.clientCA != nil
        router.put(RouterPath(basePath + ":name")) { request, context -> Response in
            let certificate = mutualTLS ? await context.clientCertificate() : nil
            return try await receive(request, name: context.parameters.get("name") ?? "", clientCertificate: certificate,
                                     intake: intake, limit: server.maxBundleSize)
        }
        ReadAPI.register(on: router, database: intake.database, files: intake.files, reports: reports)
        let tls = try tlsConfiguration(server)
        do {
            return Application(
                router: router,
                server: try .tls(.http1(configuration: .init(idleTimeout: TimeAmount(server.idleTimeout))), tlsConfiguration: tls),
                configuration: .init(address: .hostname(server.host, port: server.port), serverName: "care-support"),
                onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
                logger: logger)
        } catch {
            throw IntakeServerError("cannot set up TLS: \(error)")
        }
    }

    static func tlsConfiguration(_ server: SupportConfiguration.Server) throws(IntakeServerError) -> TLSConfiguration {
        guard let certificatePath = server.tlsCertificate, let keyPath = server.tlsKey else {
            throw IntakeServerError("tls-certificate and tls-key are needed to serve")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw IntakeServerError("\(certificatePath) holds no PEM certificate") }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            tls.minimumTLSVersion = .tlsv12
            if let clientCA = server.clientCA {
                // A client certificate is checked when presented; a bearer token still suffices without one.
                tls.trustRoots = .file(clientCA)
                tls.certificateVerification = .optionalVerification
            }
            return tls
        } catch let error as IntakeServerError {
            throw error
        } catch {
            throw IntakeServerError("cannot load the TLS certificate \(certificatePath) or key \(keyPath): \(error)")
        }
    }

    /// One line saying why: a reason quoting a bundle (a device name, a host name) has its
    /// control characters escaped, so the line stays one line and carries no terminal escapes.
    static func text(_ status: Int, _ reason: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: line(reason))))
    }

    /// `reason` as the one line of an answer's body.
    static func line(_ reason: String) -> String { TerminalText.escaped(reason) + "\n" }

    /// The customer the request's credentials name: a live bearer token, else a client
    /// certificate whose subject is allowed for a customer, with the pinned public key when one
    /// is pinned (nil: neither). A token naming one customer and a certificate naming another is
    /// refused (nil) rather than guessed.
    static func customer(_ request: Request, clientCertificate: ClientCertificate?, database: any SupportDatabase) async throws(SupportStoreError) -> String? {
        var byToken: String?
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
            let token = parts[1].trimmingCharacters(in: .whitespaces)
            guard !token.isEmpty, token.count <= 200 else { return nil }
            guard let customer = try await database.customer(forTokenHash: UploadToken.hash(token), scope: .upload) else { return nil }
            byToken = customer
        }
        var bySubject: String?
        if let clientCertificate, let access = try await database.clientAccess(forSubject: clientCertificate.subject),
           access.publicKeySHA256 == nil || access.publicKeySHA256 == clientCertificate.publicKeySHA256 {
            bySubject = access.customer
        }
        if let byToken, let bySubject, byToken != bySubject { return nil }
        return byToken ?? bySubject
    }

    static func receive(_ request: Request, name: String, clientCertificate: ClientCertificate?, intake: BundleIntake, limit: Int) async throws -> Response {
        let customer: String
        do {
            guard let found = try await Self.customer(request, clientCertificate: clientCertificate, database: intake.database) else {
                return text(401, "no valid credentials: send Authorization: Bearer TOKEN with a token from `care-support token create`, or a client certificate whose subject (and public key, when pinned) is allowed",
                            headers: [.wwwAuthenticate: "Bearer realm=\"care-support\""])
            }
            customer = found
        } catch {
            intake.logger.error("cannot check a token: \(error)")
            return text(503, "credentials cannot be checked now, try again later")
        }
        guard BundleIntake.isAcceptableName(name) else {
            return text(400, "not a bundle file name: expected NAME.tar.gz made of letters, digits, '.', '_' and '-'")
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return text(413, "refused: bundle too large, \(length) bytes, more than the limit of \(limit)")
        }
        let file: IncomingFile
        do {
            file = try intake.files.newIncomingFile()
        } catch {
            intake.logger.error("cannot receive an upload: \(error)")
            return text(503, "the upload cannot be received now, try again later")
        }
        defer { file.discard() }
        // A body cut off (connection reset, client gone) throws here: nothing is stored and the
        // temporary file goes with the defer.
        for try await buffer in request.body {
            guard file.size + buffer.readableBytes <= limit else {
                return text(413, "refused: bundle too large, more than the limit of \(limit) bytes")
            }
            try buffer.withUnsafeReadableBytes { bytes in try file.write(bytes) }
        }
        let sha256 = try file.finish()
        let answer = await intake.accept(file, sha256: sha256, name: name, customer: customer,
                                         claimedSHA256: request.headers.first { $0.name.canonicalName == "x-care-bundle-sha256" }?.value)
        return text(answer.status, answer.reason)
    }
}

extension SupportConfiguration {
    func validateForServingOrThrow() throws(IntakeServerError) {
        do {
            try validateForServing()
        } catch {
            throw IntakeServerError(error.description)
        }
    }
}

/// Headers on every answer: no content sniffing, nothing stored by caches or browsers (answers
/// carry a customer's data, fetched with a token). No HSTS: it would bind every port of the host
/// name to HTTPS, other services on it included.
/// Errors thrown past the handlers (no such route, a method a route does not take) get the
/// documented `{"error": ...}` body and these headers too, not an empty answer without them.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError {
            response = ReadAPI.error(Int(error.status.code), error.body ?? (error.status == .notFound ? "no such resource" : error.status.reasonPhrase))
            for field in error.headers { response.headers.append(field) }
        } catch {
            context.logger.error("request failed: \(error)")
            response = ReadAPI.error(500, "the request failed on the server; its log says why")
        }
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}
