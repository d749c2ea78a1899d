/*
 * crew/io.h - files, sockets and pipes from tasks (included by crew.h).
 *
 * Overview
 * --------
 * Each call here suspends the calling task until the operation completes and
 * returns what the system call would (a count, an fd, 0) or a negative errno;
 * it never sets errno. Each is a cancellation point: in a cancelled task it
 * returns -ECANCELED at once; cancelled while waiting (crew_cancel from any
 * task or thread, or the runtime's shutdown), the operation is cancelled on
 * the worker that submitted it and the call returns -ECANCELED. In a deadline
 * scope (crew_deadline_push) an operation still waiting at the deadline is
 * cancelled the same way and the call returns -ETIMEDOUT.
 * Outside a task every call returns -EPERM.
 *
 * Buffers: a buffer (and an iovec array, an address, a path) passed to a
 * call belongs to the kernel until the call returns, cancelled or not, and is
 * never touched afterwards: a cancelled call returns only once the kernel is
 * done with it. When the operation completed before the cancel reached it,
 * its real result is returned (data read is not lost, an accepted fd is the
 * caller's); callers should check for it rather than assume -ECANCELED.
 *
 * Backends: crew_run picks io_uring, else epoll (a one-line notice on stderr
 * says why io_uring is unavailable, e.g. a container's seccomp profile);
 * CREW_BACKEND=io_uring or =epoll in the environment forces one. With epoll,
 * reads and writes of regular files, openat, close, fsync, fdatasync, statx
 * and shutdown run on the worker's thread (blocking it for the syscall),
 * sockets and pipes wait for readiness; a blocking fd is best made O_NONBLOCK
 * (a plain read after readiness could block the worker if another thread
 * drains the fd first). Both backends run crew_sendfile that way (io_uring
 * has no sendfile operation): the file is read on the worker's thread, and
 * the task waits for room on out_fd; and crew_splice (io_uring's splice
 * waits in a kernel thread holding the pipe's lock, so that a write to that
 * pipe could block the worker's thread). crew_splice and crew_sendfile make
 * their fds O_NONBLOCK for the duration of each attempt there, as accept
 * and connect do with epoll (another thread sharing such an fd may see
 * EAGAIN meanwhile).
 *
 * Progress: an operation belongs to the worker whose task submitted it; that
 * worker reaps its completion when it runs out of tasks, when it parks, and
 * every 61st task switch (the fairness tick). While another task on the same
 * worker computes without suspending, the completion waits until that task
 * suspends (an idle worker takes over the busy worker's timers and its
 * last-woken task, not its I/O): long computations should crew_yield now and
 * then. Submissions are batched: they go to the kernel at the worker's next
 * poll (when it runs out of tasks, at the fairness tick, before it parks),
 * or at once when 32 are pending, so that one syscall carries many; a
 * computing task delays them as it delays completions.
 *
 * SIGPIPE: writing to a socket or pipe whose reader is gone raises SIGPIPE as
 * write(2) does: pass MSG_NOSIGNAL to crew_send, or ignore SIGPIPE.
 *
 * Context (every call): a crew task. Thread-safety is that of the system call.
 */
#ifndef CREW_IO_API_H
#define CREW_IO_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/select.h> /* sigset_t, also in strict C modes (signal.h hides it) */

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CREW_API
#define CREW_API
#endif

/** crew_read - read(2): up to `len` bytes into `buf`; 0 at end of file. */
CREW_API ssize_t crew_read(int fd, void *buf, size_t len);
/** crew_write - write(2): a count, possibly less than `len` (see crew_write_all). */
CREW_API ssize_t crew_write(int fd, const void *buf, size_t len);
/** crew_pread - pread(2) at `offset` (the file position is unchanged). */
CREW_API ssize_t crew_pread(int fd, void *buf, size_t len, off_t offset);
/** crew_pwrite - pwrite(2) at `offset`. */
CREW_API ssize_t crew_pwrite(int fd, const void *buf, size_t len, off_t offset);
/** crew_readv - readv(2); `iov` and the buffers it names are the kernel's until return. */
CREW_API ssize_t crew_readv(int fd, const struct iovec *iov, int iovcnt);
/** crew_writev - writev(2). */
CREW_API ssize_t crew_writev(int fd, const struct iovec *iov, int iovcnt);
/**
 * crew_recv - recv(2) with `flags` (MSG_PEEK, MSG_WAITALL...); 0: the peer
 * shut down. MSG_DONTWAIT: -EAGAIN instead of waiting, on both backends. A
 * MSG_WAITALL receive that ends early (cancel, deadline, close, error) after
 * a part came returns the part. `len` above 2 GiB - 4 KiB is cut to it, as
 * read(2) cuts it. One difference from recv(2): MSG_WAITALL on a
 * SOCK_SEQPACKET socket gathers several records until `len` is full, as
 * io_uring's receive does (on both backends, for one behaviour), where
 * recv(2) returns one record.
 */
CREW_API ssize_t crew_recv(int fd, void *buf, size_t len, int flags);
/** crew_send - send(2) with `flags` (MSG_NOSIGNAL...): a count, possibly partial. */
CREW_API ssize_t crew_send(int fd, const void *buf, size_t len, int flags);

/**
 * crew_recvmsg - recvmsg(2): a count (0: the peer shut down) gathered into
 * msg's iovecs; msg_name, msg_control (ancillary data: fds passed with
 * SCM_RIGHTS are the caller's, MSG_CMSG_CLOEXEC marks them close-on-exec),
 * msg_namelen, msg_controllen and msg_flags are filled as recvmsg fills them.
 * MSG_WAITALL on a stream socket waits for all the iovecs hold (less at end
 * of file or on an error after a part: the part). `msg`, its iovecs, buffers,
 * name and control buffer are the kernel's until return. -EINVAL when `msg`
 * is NULL or has iovecs but no msg_iov; -EBADF, -ENOTSOCK, -EMSGSIZE
 * (more than IOV_MAX iovecs), -ECONNRESET...
 */
CREW_API ssize_t crew_recvmsg(int fd, struct msghdr *msg, int flags);
/**
 * crew_sendmsg - sendmsg(2) of msg's iovecs, with its name (unconnected
 * datagram sockets) and ancillary data (SCM_RIGHTS: the fds stay the
 * caller's); `flags` as sendmsg's (MSG_NOSIGNAL...). A count, possibly
 * partial on a stream. -EINVAL (NULL `msg`, or iovecs but no msg_iov; a bad
 * control message), -EBADF, -ENOTSOCK, -EPIPE, -EMSGSIZE...
 */
CREW_API ssize_t crew_sendmsg(int fd, const struct msghdr *msg, int flags);
/**
 * crew_shutdown - shutdown(2): SHUT_RD, SHUT_WR (the peer reads end of file
 * once it has read what was sent) or SHUT_RDWR. The fd stays open (close it
 * with crew_close). 0; -EINVAL (bad `how`), -EBADF, -ENOTSOCK, -ENOTCONN.
 */
CREW_API int crew_shutdown(int fd, int how);

/**
 * crew_write_all, crew_send_all - write (send) all `len` bytes, looping over
 * partial writes. Return `len`, or the negative errno of the first failing
 * call (-ECANCELED, -ETIMEDOUT, -EPIPE...): how much went out before it is
 * not reported (the stream is unusable for framing then anyway).
 */
CREW_API ssize_t crew_write_all(int fd, const void *buf, size_t len);
CREW_API ssize_t crew_send_all(int fd, const void *buf, size_t len, int flags);

/**
 * crew_accept - accept4(2): a new connection's fd (the caller owns it), with
 * `flags` (SOCK_NONBLOCK, SOCK_CLOEXEC). `addr`/`addrlen` (both NULL, or
 * both set, *addrlen the size of addr) receive the peer's address.
 */
CREW_API int crew_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
/** crew_connect - connect(2): 0 once connected; -ECONNREFUSED, -ETIMEDOUT... */
CREW_API int crew_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
/**
 * crew_close - close(2). Other operations of this worker still waiting on
 * `fd` end with their own result or -EBADF (on io_uring this needs Linux
 * 5.19's cancel by fd; before it they go on waiting); operations of other
 * workers' tasks on `fd` should be cancelled (and their calls returned)
 * before the close. Operations on another fd of the same file (a dup) go on.
 * The fd is closed even when -EINTR/-EIO is returned. In a cancelled task,
 * or past a deadline scope's end, crew_close returns -ECANCELED or
 * -ETIMEDOUT at once and the fd stays open (as any call there): cleanup
 * code that runs then should close with close(2).
 */
CREW_API int crew_close(int fd);
/** crew_openat - openat(2): a new fd the caller owns; -ENOENT, -EACCES... */
CREW_API int crew_openat(int dirfd, const char *path, int flags, mode_t mode);
/** crew_fsync - fsync(2). */
CREW_API int crew_fsync(int fd);
/**
 * crew_fdatasync - fdatasync(2): the file's data (and the metadata needed to
 * read it back, such as its size) on stable storage. 0; -EBADF, -EINVAL (an
 * fd that cannot be synced: a pipe, a socket), -EIO, -ENOSPC...
 */
CREW_API int crew_fdatasync(int fd);

struct statx; /* <sys/stat.h> with _GNU_SOURCE, or <linux/stat.h> */
/**
 * crew_statx - statx(2): fills `*out` for `path` relative to `dirfd`
 * (AT_FDCWD, or a directory fd; `path` "" with AT_EMPTY_PATH in `flags`: the
 * fd itself), asking for the fields in `mask` (STATX_SIZE, STATX_BASIC_STATS
 * ...; out->stx_mask says which were filled). `flags`: AT_SYMLINK_NOFOLLOW,
 * AT_EMPTY_PATH, AT_STATX_*. `path` and `out` are the kernel's until return.
 * 0; -EINVAL when `path` or `out` is NULL (or bad flags); -ENOENT, -ENOTDIR,
 * -EACCES, -EBADF (a bad dirfd with a relative path)...
 */
CREW_API int crew_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out);

/**
 * crew_splice - splice(2): move up to `len` bytes from `fd_in` to `fd_out`
 * without copying them through user memory; one of the two must be a pipe.
 * `off_in`/`off_out` (NULL for a pipe, or to use and advance the file
 * position): the offset to read or write at, advanced by the count; the
 * file position is then unchanged. `flags`: SPLICE_F_MOVE, SPLICE_F_MORE
 * (SPLICE_F_NONBLOCK changes nothing: the task suspends instead of
 * blocking). Returns the count, possibly less than `len`; 0 at end of input.
 * -EINVAL (a negative offset, an unknown flag, neither fd a pipe, an offset
 * for a pipe: -ESPIPE), -EBADF...
 */
CREW_API ssize_t crew_splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len,
			     unsigned flags);
/**
 * crew_sendfile - sendfile(2): copy up to `count` bytes of file `in_fd`
 * (from `*offset`, which is advanced by the count and leaves the file
 * position alone; NULL: from the file position, which advances) to `out_fd`
 * (a socket, a pipe or a file). Returns the count, possibly less than
 * `count` (loop for the rest); 0 at end of file. While `out_fd` has no room
 * the task suspends. -EINVAL (a negative offset; fds sendfile cannot join),
 * -EBADF, -EPIPE (the reader is gone: SIGPIPE as for write), -ESPIPE...
 */
CREW_API ssize_t crew_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
/**
 * crew_poll - wait until `fd` (any pollable fd, e.g. one another library
 * owns) is ready for `events` (POLLIN, POLLOUT, POLLPRI...): returns the
 * revents mask (> 0), or a negative errno (-EBADF...). TCP urgent data
 * arriving during the wait does not wake an io_uring poll for POLLPRI alone
 * (the kernel's, here up to 6.18; poll(2) and epoll see it): ask for
 * POLLIN | POLLPRI on io_uring.
 */
CREW_API int crew_poll(int fd, short events);

/**
 * crew_signal_wait - suspend until one of the signals in `set` arrives;
 * returns its number (loop.add_signal_handler, as a call).
 * The signals must be blocked in the worker threads, which inherit the mask
 * of the thread that calls crew_run: block them there (pthread_sigmask)
 * before crew_run, and in every other thread of the process, or their
 * handler (default: often death) takes them first. Blocked process-directed
 * signals (kill(2)) are then queued for crew_signal_wait; crew's own pool
 * threads block every signal. Several tasks waiting for the same signal:
 * one of them gets each occurrence. Returns the signal number; -EINVAL when
 * `set` is NULL or holds a signal that is not blocked (with a message);
 * -ECANCELED, -ETIMEDOUT (deadline scope), -EPERM outside a task; -EMFILE...
 * from signalfd(2).
 */
CREW_API int crew_signal_wait(const sigset_t *set);

/**
 * crew_tcp_listen - a listening TCP socket (non-blocking, close-on-exec,
 * SO_REUSEADDR) bound to `host` (a name or address; NULL or "": every
 * interface, IPv6 and IPv4 on one socket where the system has IPv6) and
 * `port` (0: the system picks one; see crew_tcp_port), with `backlog` (<= 0:
 * SOMAXCONN). Names are resolved on the offload pool (crew_offload). Returns
 * the fd (the caller owns it); -ENOENT (no such host), -EAGAIN (the resolver
 * is unavailable), -EADDRINUSE, -EACCES, -ECANCELED, -EPERM outside a task.
 */
CREW_API int crew_tcp_listen(const char *host, uint16_t port, int backlog);
/**
 * crew_tcp_connect - a connected TCP socket (non-blocking, close-on-exec) to
 * `host`:`port`, trying each address the name resolves to in order. Returns
 * the fd (the caller owns it); -EINVAL (NULL or empty host, port 0), -ENOENT,
 * -ECONNREFUSED (the last address's error), -ECANCELED, -ETIMEDOUT
 * (deadline scope), -EPERM outside a task.
 */
CREW_API int crew_tcp_connect(const char *host, uint16_t port);
/** crew_tcp_port - the local port `fd` is bound to; -EBADF, -ENOTSOCK... Any thread. */
CREW_API int crew_tcp_port(int fd);

/**
 * crew_reader - a buffered reader over one fd, for line- and
 * delimiter-framed protocols. A complete type: declare it anywhere; its
 * fields are private. One task uses it at a time.
 */
typedef struct crew_reader {
	int fd;
	int is_socket;
	char *buf;
	size_t cap, start, end;
} crew_reader;

/**
 * crew_reader_init - read `fd` through a buffer of `cap` bytes (the longest
 * frame crew_reader_read_until can return). The fd stays the caller's.
 * Returns 0; -EINVAL (NULL, fd < 0, cap 0); -ENOMEM. Any context.
 */
CREW_API int crew_reader_init(crew_reader *r, int fd, size_t cap);
/** crew_reader_fini - free the buffer (not the fd). NULL is ignored. */
CREW_API void crew_reader_fini(crew_reader *r);
/**
 * crew_reader_read_until - the next frame ending with byte `delim`
 * (included): *out points into the reader's buffer, valid until the next
 * call on `r`; returns its length. At end of file returns what is left
 * without a delimiter (0 when nothing is). -EMSGSIZE when `cap` bytes hold no
 * delimiter (the bytes stay buffered); crew_read's errors (-ECANCELED,
 * -ETIMEDOUT, -ECONNRESET...). Context: a task.
 */
CREW_API ssize_t crew_reader_read_until(crew_reader *r, int delim, char **out);
/**
 * crew_reader_read - up to `len` bytes: buffered ones first, else one read
 * (straight into `dst` when `len` >= cap). 0 at end of file (and at once
 * when `len` is 0, as read(2)); crew_read's errors. Context: a task.
 */
CREW_API ssize_t crew_reader_read(crew_reader *r, void *dst, size_t len);
/** crew_reader_buffered - bytes read from the fd but not yet returned. */
CREW_API size_t crew_reader_buffered(const crew_reader *r);
/**
 * crew_reader_peek - those bytes, not consumed: *data points at them (valid
 * until the next call on `r`); returns their count (0, *data untouched, for
 * NULL arguments). Lets a protocol see whether a whole frame is already
 * there before it decides to wait for more (an HTTP server flushes its
 * pipelined responses unless the next request is complete). Any context.
 */
CREW_API size_t crew_reader_peek(const crew_reader *r, const char **data);

/**
 * crew_backend_name - "io_uring" or "epoll": the I/O backend of the running
 * runtime; NULL when none runs. Any thread.
 */
CREW_API const char *crew_backend_name(void);

#ifdef __cplusplus
}
#endif
#endif /* CREW_IO_API_H */
