"""minidocker's default seccomp profile, in Docker's JSON profile format. Chapter 11.

The same verdicts as Docker's default profile (https://docs.docker.com/engine/security/seccomp/,
moby profiles/seccomp/default.json): an allowlist; everything else fails with EPERM. Written
here by purpose, so that the notebook can say why each group is allowed, and with the reason
for the most important refusals in :data:`BLOCKED`. tests/test_ch11_security.py runs the
same syscalls under a private dockerd and compares the verdicts.

    default_profile() -> dict      {"defaultAction": ..., "archMap": ..., "syscalls": [...]}
    BLOCKED                        syscall -> why a container must not make it
"""

from __future__ import annotations

__all__ = ["ALLOWED", "BLOCKED", "CAPABILITY_SYSCALLS", "default_profile"]

# Allowed for every container, by what programs use them for.
ALLOWED = {
    "files and directories": """
        access chdir chmod chown chown32 close close_range copy_file_range creat dup dup2 dup3 faccessat
        faccessat2 fadvise64 fadvise64_64 fallocate fchdir fchmod fchmodat fchown fchown32 fchownat fcntl
        fcntl64 fdatasync flock fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
        futimesat getcwd getdents getdents64 lchown lchown32 link linkat _llseek lseek lstat lstat64 mkdir
        mkdirat mknod mknodat name_to_handle_at newfstatat open openat openat2 pread64 preadv preadv2 pwrite64
        pwritev pwritev2 read readahead readlink readlinkat readv rename renameat renameat2 rmdir sendfile
        sendfile64 splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs tee
        truncate truncate64 umask unlink unlinkat utime utimensat utimensat_time64 utimes vmsplice write
        writev
        fgetxattr flistxattr fremovexattr fsetxattr getxattr lgetxattr listxattr llistxattr lremovexattr
        lsetxattr removexattr setxattr
    """,
    "waiting for events and asynchronous I/O": """
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
        eventfd eventfd2 fanotify_mark inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
        io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit io_uring_enter
        io_uring_register io_uring_setup ioctl pipe pipe2 poll ppoll ppoll_time64 pselect6 pselect6_time64
        select _newselect signalfd signalfd4 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
        timerfd_settime64
    """,
    "memory": """
        brk madvise membarrier memfd_create memfd_secret mincore mlock mlock2 mlockall mmap mmap2 mprotect
        mremap msync munlock munlockall munmap pkey_alloc pkey_free pkey_mprotect remap_file_pages
    """,
    "processes and threads": """
        capget capset execve execveat exit exit_group fork vfork wait4 waitid waitpid getpid getppid gettid
        getpgid getpgrp getsid setsid setpgid getpriority setpriority getrlimit setrlimit prlimit64 ugetrlimit
        getrusage prctl get_robust_list set_robust_list set_tid_address get_thread_area set_thread_area rseq
        restart_syscall pidfd_open pidfd_send_signal process_mrelease ioprio_get ioprio_set getcpu futex
        futex_time64 futex_waitv seccomp landlock_add_rule landlock_create_ruleset landlock_restrict_self
        sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
        sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
        sched_setparam sched_setscheduler sched_yield
    """,
    "user and group ids (the kernel checks CAP_SETUID/CAP_SETGID)": """
        getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getresgid getresgid32
        getresuid getresuid32 getuid getuid32 setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
        setgroups setgroups32 setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
        setreuid32 setuid setuid32
    """,
    "signals": """
        alarm kill tkill tgkill pause rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
        rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack sigprocmask
        sigreturn
    """,
    "clocks and timers (reading; setting the clock needs CAP_SYS_TIME)": """
        adjtimex clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
        clock_nanosleep clock_nanosleep_time64 getitimer setitimer gettimeofday nanosleep time times
        timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    """,
    "sockets (socket itself below: not AF_VSOCK)": """
        accept accept4 bind connect getpeername getsockname getsockopt listen recv recvfrom recvmmsg
        recvmmsg_time64 recvmsg send sendmmsg sendmsg sendto setsockopt shutdown socketcall socketpair
    """,
    "System V and POSIX IPC (the IPC namespace isolates them)": """
        ipc mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
        mq_timedsend_time64 mq_unlink msgctl msgget msgrcv msgsnd semctl semget semop semtimedop
        semtimedop_time64 shmat shmctl shmdt shmget
    """,
    "about the system": "getrandom sysinfo uname",
}

# Allowed only when the container holds the capability that the kernel checks anyway: with
# --cap-add SYS_ADMIN a container may mount, so the filter must let mount through.
CAPABILITY_SYSCALLS = {
    "CAP_SYS_ADMIN": """bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
                        mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname
                        sethostname setns syslog umount umount2 unshare""",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# Why the most dangerous refusals matter. Most are also refused by a missing capability; the
# filter is the second wall, and it keeps the kernel code behind the call out of reach.
BLOCKED = {
    "keyctl": "kernel keyrings are not namespaced: a container would see the host's keys",
    "add_key": "kernel keyrings are not namespaced",
    "request_key": "kernel keyrings are not namespaced",
    "bpf": "load programs into the kernel (needs CAP_SYS_ADMIN or CAP_BPF)",
    "perf_event_open": "observe the whole machine; a long history of kernel bugs",
    "userfaultfd": "stall the kernel on a page fault: the trick behind many exploit races",
    "kexec_load": "boot another kernel",
    "init_module": "load a kernel module",
    "finit_module": "load a kernel module",
    "delete_module": "unload a kernel module",
    "reboot": "reboot the host (the PID namespace only turns it into a signal to PID 1)",
    "swapon": "swap is not namespaced",
    "swapoff": "swap is not namespaced",
    "mount": "mounts could reveal or change the host's filesystems (needs CAP_SYS_ADMIN)",
    "umount2": "same as mount",
    "unshare": "new namespaces, among them a user namespace with every capability in it",
    "setns": "enter other namespaces",
    "clone": "with a CLONE_NEW* flag, the same as unshare (plain fork and threads are allowed)",
    "clone3": "its flags are in memory, where a filter cannot look: ENOSYS, so libc falls back to clone",
    "open_by_handle_at": "open any file of a filesystem by its handle: the 'shocker' escape (2014)",
    "iopl": "raw access to I/O ports",
    "ioperm": "raw access to I/O ports",
    "settimeofday": "the clock is not namespaced",
    "clock_settime": "the clock is not namespaced",
    "personality": "only the common personalities: others have enabled kernel exploits (READ_IMPLIES_EXEC)",
    "ptrace": "allowed since Linux 4.8 (seccomp can no longer be bypassed with it); needs the same user",
    "acct": "process accounting is system-wide",
    "quotactl": "quotas are system-wide",
    "syslog": "the kernel log leaks kernel addresses",
    "pivot_root": "not needed inside a container: a runtime's call",
    "vm86": "old, buggy kernel code",
    "uselib": "old, unused interface",
    "nfsservctl": "removed from the kernel",
}

# personality(2) values programs really use: PER_LINUX, UNAME26, PER_LINUX32, PER_LINUX32|UNAME26,
# and 0xffffffff, which only asks for the current one.
_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
_AF_VSOCK = 40
# CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET
_CLONE_NAMESPACE_FLAGS = 0x7E020000


def default_profile() -> dict:
    """The default profile as a Docker-format dict (what ``--security-opt seccomp=FILE`` reads)."""
    allowed = " ".join(ALLOWED.values()).split()
    syscalls: list[dict] = [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    syscalls.append({"names": ["process_vm_readv", "process_vm_writev", "ptrace"], "action": "SCMP_ACT_ALLOW",
                     "includes": {"minKernel": "4.8"}})
    syscalls.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": _AF_VSOCK, "op": "SCMP_CMP_NE"}]})
    syscalls += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]} for value in _PERSONALITIES]
    syscalls.append({"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                     "includes": {"arches": ["amd64", "x32"]}})
    syscalls.append({"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW",
                     "includes": {"arches": ["amd64", "x32", "x86"]}})
    syscalls.append({"names": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                               "cacheflush", "set_tls"], "action": "SCMP_ACT_ALLOW",
                     "includes": {"arches": ["arm", "arm64"]}})
    for cap, names in CAPABILITY_SYSCALLS.items():
        syscalls.append({"names": names.split(), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
    # Without CAP_SYS_ADMIN: fork and threads, but no clone with a namespace flag.
    syscalls.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": _CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                               "op": "SCMP_CMP_MASKED_EQ"}],
                     "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}})
    syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,  # ENOSYS
                     "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,  # EPERM
        "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                     "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": syscalls,
    }
