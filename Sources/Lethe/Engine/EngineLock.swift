#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock (`flock(LOCK_EX)`) on the `.lethe` directory itself (so it creates
/// no file: a refused request leaves the store byte-identical), released by `deinit`. Forget
/// requests hold it from reading the ref's version to moving the ref, so requests issued at the
/// same time by several processes apply one after the other (each on the previous one's result,
/// each with its own `R<n>` id) instead of racing for the ref. Nothing else flocks the directory.
final class EngineLock {
    private let fd: Int32

    /// Blocks until the directory `path` is locked (`open(O_DIRECTORY)` + `flock`).
    init(directory path: String) throws(EngineError) {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
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
