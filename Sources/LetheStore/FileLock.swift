#if canImport(Glibc)
import Glibc
#endif

/// An advisory lock on a file (`flock`), released in `deinit` or by `unlock()`.
///
/// Writers (import, new versions, ref moves) hold the store lock shared; gc holds it
/// exclusive, so it never sweeps an object that a running writer has just deduplicated
/// against but not yet referenced.
final class FileLock {
    private var fd: Int32

    /// Blocks until the lock on `path` is held (`exclusive` or shared).
    init(path: String, exclusive: Bool) throws(StoreError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("open(\(path)): \(String(cString: strerror(errno)))") }
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            throw .io("flock(\(path)): \(String(cString: strerror(e)))")
        }
    }

    /// Releases the lock now.
    func unlock() {
        if fd >= 0 { close(fd); fd = -1 }
    }

    deinit { unlock() }
}
