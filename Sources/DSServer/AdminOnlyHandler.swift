import DSControl
import DSHTTP1
import DSProxy

/// The admin socket's handler (`--admin-listen`, or ds-lb.socket's `admin`): every path is the
/// router's to answer, so a routed path gets its 404 ("not an admin endpoint") instead of
/// reaching a replica, and the traffic socket serves no admin endpoint at all.
struct AdminOnlyHandler: AdminHandler {
    let router: AdminRouter

    func isAdminPath(_ path: Substring) -> Bool { true }

    func needsToken(_ path: Substring) -> Bool { router.needsToken(path) }

    func submit(_ request: AdminRequest, reply: @escaping @Sendable (AdminResponse) -> Void) {
        router.submit(request, reply: reply)
    }

    func refused(method: String, path: String, client: String, status: HTTPStatus, reason: String) {
        router.refused(method: method, path: path, client: client, status: status, reason: reason)
    }
}
