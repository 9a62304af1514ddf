import CLibCurl
import Foundation

/// One HTTP PUT (a bundle) or POST (a webhook's JSON) of a file with libcurl's easy interface. Blocking: run it on a ``SerialWorkThread``,
/// never on Swift's cooperative pool.
struct CurlPut {
    struct Request {
        var url: String
        var file: String
        var size: Int64
        var headers: [String]
        var caFile: String?
        var clientCertificate: String?
        var clientKey: String?
        var proxy: String?
        /// `user:password` for the proxy.
        var proxyCredentials: String? = nil
        var timeout: Duration
        /// http:// is allowed only when the configured url says so (a test or lab server).
        var allowPlainHTTP: Bool
        /// POST instead of PUT.
        var post = false
    }

    /// What came back: the HTTP status and the first bytes of the body, or a transport failure.
    enum Response: Equatable {
        /// `retryAfter`: the seconds a 429 or 503 asked the client to wait (`Retry-After`).
        case http(status: Int, body: String, retryAfter: Int? = nil)
        case failed(String)
        /// The local file could not be opened or read (`errno` says why): this bundle's problem,
        /// not the server's.
        case unreadable(String, errno: Int32)
        /// `timeout` ran out while the body was being sent: a file too large for the link in that
        /// time, or a server that stopped reading; the next file tells which.
        case timedOutSending(String)
        /// The connection broke (reset, closed without an answer) after the body started: a
        /// server or proxy that fails on this file, or the network; the next file tells which.
        case cutOffSending(String)
    }

    /// State the C callbacks reach through their user pointer.
    final class CallbackContext {
        let fd: Int32
        var body: [UInt8] = []
        let abort: AbortFlag
        /// errno of a failed read of the file, which aborts the transfer.
        var readError: Int32?
        /// Bytes of the file handed to libcurl.
        var sent = 0
        init(fd: Int32, abort: AbortFlag) {
            self.fd = fd
            self.abort = abort
        }
    }

    /// Set from any thread to end a transfer in progress (graceful shutdown).
    final class AbortFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var raised = false
        func raise() { lock.lock(); raised = true; lock.unlock() }
        var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return raised }
    }

    static let bodyLimit = 200

    /// curl_global_init is not thread-safe: done once, before the first handle.
    static let globalInit: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    static func perform(_ request: Request, abort: AbortFlag) -> Response {
        guard globalInit else { return .failed("libcurl could not be initialised") }
        let fd = open(request.file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            return .unreadable("cannot open \(request.file): \(String(cString: strerror(code)))", errno: code)
        }
        defer { close(fd) }
        let context = CallbackContext(fd: fd, abort: abort)
        let contextPointer = Unmanaged.passUnretained(context).toOpaque()
        // libcurl writes into this buffer until cleanup: it must outlive the handle.
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers { headerList = curl_slist_append(headerList, header) }
        guard let handle = curl_easy_init() else { return .failed("libcurl could not create a transfer") }
        defer { curl_easy_cleanup(handle) }

        let readCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { buffer, size, count, user in
            let context = Unmanaged<CallbackContext>.fromOpaque(user!).takeUnretainedValue()
            while true {
                let n = read(context.fd, buffer, size * count)
                if n >= 0 { context.sent += n; return n }
                if errno != EINTR {
                    context.readError = errno
                    return Int(CURL_READFUNC_ABORT)
                }
            }
        }
        let writeCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { buffer, size, count, user in
            let context = Unmanaged<CallbackContext>.fromOpaque(user!).takeUnretainedValue()
            let total = size * count
            let keep = min(total, CurlPut.bodyLimit - context.body.count)
            if keep > 0, let buffer {
                buffer.withMemoryRebound(to: UInt8.self, capacity: keep) { context.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: keep)) }
            }
            return total
        }
        let progressCallback: @convention(c) (UnsafeMutableRawPointer?, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> Int32 = { user, _, _, _, _ in
            Unmanaged<CallbackContext>.fromOpaque(user!).takeUnretainedValue().abort.isRaised ? 1 : 0
        }

        var setupError: CURLcode = CURLE_OK
        func set(_ option: CURLoption, _ value: Int) { if setupError == CURLE_OK { setupError = care_curl_setopt_long(handle, option, value) } }
        func set(_ option: CURLoption, _ value: String) { if setupError == CURLE_OK { setupError = care_curl_setopt_string(handle, option, value) } }
        func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) { if setupError == CURLE_OK { setupError = care_curl_setopt_pointer(handle, option, pointer) } }

        set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
        set(CURLOPT_URL, request.url)
        // Peer and host verification stay on: the default, set again so that no build can change it.
        set(CURLOPT_SSL_VERIFYPEER, 1)
        set(CURLOPT_SSL_VERIFYHOST, 2)
        set(CURLOPT_PROTOCOLS_STR, request.allowPlainHTTP ? "http,https" : "https")
        set(CURLOPT_NOSIGNAL, 1)
        if request.post {
            set(CURLOPT_POST, 1)
            if setupError == CURLE_OK { setupError = care_curl_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.size)) }
        } else {
            set(CURLOPT_UPLOAD, 1)
            if setupError == CURLE_OK { setupError = care_curl_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.size)) }
        }
        set(CURLOPT_READFUNCTION, pointer: unsafeBitCast(readCallback, to: UnsafeMutableRawPointer.self))
        set(CURLOPT_READDATA, pointer: contextPointer)
        set(CURLOPT_WRITEFUNCTION, pointer: unsafeBitCast(writeCallback, to: UnsafeMutableRawPointer.self))
        set(CURLOPT_WRITEDATA, pointer: contextPointer)
        set(CURLOPT_NOPROGRESS, 0)
        set(CURLOPT_XFERINFOFUNCTION, pointer: unsafeBitCast(progressCallback, to: UnsafeMutableRawPointer.self))
        set(CURLOPT_XFERINFODATA, pointer: contextPointer)
        set(CURLOPT_HTTPHEADER, pointer: UnsafeMutableRawPointer(headerList))
        set(CURLOPT_TIMEOUT_MS, Int(request.timeout.components.seconds * 1000 + request.timeout.components.attoseconds / 1_000_000_000_000_000))
        set(CURLOPT_CONNECTTIMEOUT_MS, 30_000)
        Self.trust(only: request.caFile, set: set, set: set)
        if let certificate = request.clientCertificate { set(CURLOPT_SSLCERT, certificate) }
        if let key = request.clientKey { set(CURLOPT_SSLKEY, key) }
        // Without `proxy`, libcurl honours https_proxy/no_proxy from the environment, as other tools do.
        if let proxy = request.proxy { set(CURLOPT_PROXY, proxy) }
        if let credentials = request.proxyCredentials { Self.logIn(credentials, set: set, set: set) }
        guard setupError == CURLE_OK else {
            return .failed("libcurl refused an option: \(String(cString: curl_easy_strerror(setupError)))")
        }

        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            if abort.isRaised { return .failed("upload aborted: the agent is stopping") }
            if let readError = context.readError {
                return .unreadable("cannot read \(request.file): \(String(cString: strerror(readError)))", errno: readError)
            }
            let detail = String(cString: errorBuffer)
            let summary = String(cString: curl_easy_strerror(code))
            let reason = detail.isEmpty ? summary : "\(summary): \(detail)"
            if code == CURLE_OPERATION_TIMEDOUT, context.sent > 0 { return .timedOutSending(reason) }
            // Sent (some of) the body and the connection broke: not "every bundle would fail",
            // or one bundle a server crashes on would end every pass first in line.
            if [CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE].contains(code), context.sent > 0 {
                return .cutOffSending(reason)
            }
            return .failed(reason)
        }
        var status = 0
        _ = care_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var retryAfter: curl_off_t = 0
        _ = care_curl_getinfo_off_t(handle, CURLINFO_RETRY_AFTER, &retryAfter)
        return .http(status: status, body: String(decoding: context.body, as: UTF8.self), retryAfter: retryAfter > 0 ? Int(retryAfter) : nil)
    }

    /// `ca-file` replaces the system store: libcurl would otherwise also trust its built-in CA
    /// directory (/etc/ssl/certs on Debian) beside the file, so a TLS-inspecting proxy's CA or any
    /// public CA's certificate for the host would still get the token and the bundles.
    static func trust(only caFile: String?, set setString: (CURLoption, String) -> Void, set setPointer: (CURLoption, UnsafeMutableRawPointer?) -> Void) {
        guard let caFile else { return }
        setString(CURLOPT_CAINFO, caFile)
        setPointer(CURLOPT_CAPATH, nil)
    }

    /// The proxy's login with whichever method it asks for (Basic, Digest, NTLM): libcurl's
    /// default is Basic only, which a proxy wanting NTLM answers 407 for ever. Not Negotiate
    /// (Kerberos): a proxy offering it beside Basic would get neither the user nor the password.
    static func logIn(_ credentials: String, set setString: (CURLoption, String) -> Void, set setLong: (CURLoption, Int) -> Void) {
        setString(CURLOPT_PROXYUSERPWD, credentials)
        setLong(CURLOPT_PROXYAUTH, Int(bitPattern: UInt(care_curlauth_proxy())))
    }
}
