import DSProxy

/// The dashboard's paths on the admin API: the page, its event stream and the key space shares.
extension AdminRouter {
    static let dashboardPaths: Set<Substring> = ["/dashboard", "/events", "/keyspace"]

    /// The page holds no data and no secret: it is what asks for the token (and sends it with
    /// every request it makes), so a browser can open it by its address. The allow-list still
    /// applies to it like to every admin path.
    package func needsToken(_ path: Substring) -> Bool { path != "/dashboard" }

    /// The answer for a dashboard path, or nil for the other admin paths.
    func dashboardRoute(_ request: AdminRequest) -> AdminResponse? {
        guard Self.dashboardPaths.contains(Substring(request.path)) else { return nil }
        guard let dashboard else {
            return .failure(.notFound, "<Error> '\(request.path)' is not an admin endpoint")
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            return Self.methodNotAllowed(request, use: ["GET"])
        }
        switch request.path {
        case "/dashboard":
            return AdminResponse(
                status: .ok, body: DashboardPage.html, contentType: "text/html; charset=utf-8",
                extraHeaders: DashboardPage.headers)
        case "/events":
            return AdminResponse(status: .ok, body: "", contentType: "text/event-stream; charset=utf-8", stream: dashboard)
        default:
            return AdminResponse(status: .ok, body: dashboard.keyspaceBody())
        }
    }
}
