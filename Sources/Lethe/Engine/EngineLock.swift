#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock (`flock(LOCK_EX)`) on a file in the `.lethe` directory, released by
/// `deinit`. Forget requests hold `forget.lock` from reading the ref's version to moving the ref,
/// so requests issued at the same time by several processes apply one after the other (each on
/// the previous one's result, each with its own `R<n>` id) instead of racing for the ref.
final class EngineLock {
    private let fd: Int32

    /// Blocks until `path` is locked (`open` + `flock`).
    init(path: String) throws(EngineError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .store(.io("open(\(path)): \(String(cString: strerror(errno)))")) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            throw .store(.io("flock(\(path)): \(String(cString: strerror(e)))"))
        }
    }

    deinit { close(fd) }
}
