#!/usr/bin/perl
# batchd's job launcher: forks and execs jobs for the daemon, on this machine or, started over an
# SSH channel, on a remote host.
#
# Why Perl: fork + exec from a small Perl process costs what xargs pays (1,000 `true`s two at a
# time in ~0.8 s here), while Node's child_process.spawn needs about twice that, even from a small
# process; and on a remote host one long-lived launcher saves sshd a session, a shell and a
# subshell per job. perl-base is Essential on Debian and Ubuntu; where perl is missing, the daemon
# uses its Node launcher (launcher-process.ts) here and a shell wrapper per job on hosts. On this
# machine, where the build compiled it, the native launcher (launcher.c: vfork instead of fork)
# runs local jobs instead of this one, with the same protocol.
#
# Protocol (launcher-wire.ts is the other end). Requests on stdin, one frame each:
#   "<length>\n" then <length> bytes of NUL-separated fields:
#     spawn KEY FILE CWD STDOUT STDERR NARGS ARG... NENV NAME=VALUE... [OPTIONS [NJOIN JOIN...]]
#     kill KEY SIGNAL          (SIGNAL without "SIG", e.g. TERM)
#     recycle KEY PATH...      finished jobs' folders: an empty one is kept aside (renamed) for a
#                              later "mkdir" in the same parent, the rest go by one `rm -rf`, run
#                              as job KEY (its exit event, at once when there is nothing to remove)
#   STDOUT and STDERR are files to append to, or empty: the output is sent back as data events.
#   OPTIONS, comma-separated: "mkdir" makes CWD (and its parents) first; "result" adds a field
#   to the exit event, 1 if the file named by the job's BATCHD_RESULT is there and not empty;
#   "lazy" passes the output through a pipe and creates STDOUT or STDERR only when the job first
#   writes to it (creating a file is the dearest call a trivial job makes); "cpu=SECONDS",
#   "nofile=N", "nproc=N", "as=BYTES" set the job's rlimits (RLIMIT_CPU, _NOFILE, _NPROC, _AS).
#   JOIN: cgroup.procs files the job's process enters before exec (its cgroups, made by the
#   daemon); whatever is left in the first one is killed when the job's first process exits.
# Events on stdout, one tab-separated line each:
#     ready PID                (once, at start)
#     started KEY PID
#     data KEY FD LENGTH       (followed by LENGTH bytes of the job's output; FD 1 or 2)
#     exit KEY CODE SIGNUM [RESULT]   (CODE empty when killed by a signal; SIGNUM 0 when not)
#     failed KEY CODE ERRNO MESSAGE   (the job could not be started; CODE 127 or 126)
# A job's data events all come before its exit event. Each job runs in its own session and
# process group, so it can be killed as a tree; when its first process exits, whatever it left
# in its group is killed. When stdin closes (the daemon or its connection is gone, even by
# kill -9), every job here is killed and the launcher exits.
use strict;
use warnings;
use Errno qw(EINTR EAGAIN);
use File::Path qw(make_path);
use POSIX qw(:sys_wait_h setsid _exit dup2);

# A job's output pipes stay open at most this long after it exited (a process that left its
# group, holding them).
my $DRAIN_SECONDS = 2;

# Started as `perl -e <this script>` on a host, its command line is the whole script: show a name.
$0 = 'batchd-launcher' if $0 eq '-e';
$| = 1;
binmode STDOUT;
my %group_of;    # pid => key, for jobs that are running
my %pipe_of;     # fileno => [key, fd, handle, file, file handle]: output pipes being forwarded,
                 # as data events, or into `file` (opened at the first byte)
my %pipes_left;  # key => how many of its output pipes are open
my %ending;      # key => [deadline, exit event fields]: exited, output still draining
my %result_of;   # key => the result file to look for when it exits
my %cgroup_of;   # pid => the cgroup.procs file of its job's (first) cgroup
my $reap = 0;
my $busy = 0;    # time of the last spawn or exit
$SIG{CHLD} = sub { $reap = 1 };
# The daemon decides when jobs stop; a terminal's Ctrl-C reaches this process too. Caught and
# dropped rather than ignored: an ignored signal stays ignored in the jobs (through exec), and
# setting them back in each child cost it more than the rest of its work before exec.
$SIG{$_} = sub { } for qw(INT TERM HUP PIPE);

sub emit { print STDOUT join("\t", @_), "\n" }

sub emit_data {
    my ($key, $fd, $bytes) = @_;
    print STDOUT "data\t$key\t$fd\t" . length($bytes) . "\n" . $bytes;
}

sub clean { my $s = shift; $s =~ s/[\t\n\r]+/ /g; return $s }

my $NULL;    # /dev/null, every job's stdin

# Empty job folders kept for reuse, by parent folder: a rename costs the host a fraction of making
# a folder and removing it (on ext4 without a journal and with `discard`, every freed inode is a
# TRIM and slows the creations that follow). Named after this host and process, so a launcher
# can tell a dead one's (removed) from a live one's; all of them are removed when this one ends.
my $SPARES_MAX = 64;
my %spares;
my %swept;
my $spare_seq = 0;
my $HOST = (POSIX::uname())[1] // 'host';
$HOST =~ s/[^A-Za-z0-9.-]/_/g;

sub parent_of { my ($parent) = $_[0] =~ m{^(.+)/[^/]+$}; return $parent }

# A dead launcher's spares in `parent` (it was killed before it could remove them).
sub sweep_stale {
    my $parent = shift;
    opendir(my $dh, $parent) or return;
    for my $name (readdir $dh) {
        next unless $name =~ /^\.batchd-spare-\Q$HOST\E-(\d+)-\d+$/;
        next if $1 == $$ || kill(0, $1) || $!{EPERM};
        rmdir("$parent/$name");
    }
    closedir $dh;
}

# A folder (not a link to one) with nothing in it.
sub empty_folder {
    my $path = shift;
    return 0 if -l $path || !-d _;
    opendir(my $dh, $path) or return 0;
    while (defined(my $name = readdir $dh)) {
        next if $name eq '.' || $name eq '..';
        closedir $dh;
        return 0;
    }
    closedir $dh;
    return 1;
}

# Keep an empty job folder aside; false when it is not one (or the pool is full).
sub recycle_one {
    my $path   = shift;
    my $parent = parent_of($path) // return 0;
    return 0 unless empty_folder($path);
    my $pool = $spares{$parent} //= [];
    return 0 if @$pool >= $SPARES_MAX;
    sweep_stale($parent) unless $swept{$parent}++;
    my $spare = "$parent/.batchd-spare-$HOST-$$-" . $spare_seq++;
    rename($path, $spare) or return 0;
    push @$pool, $spare;
    return 1;
}

# A kept folder moved to `cwd`, with the mode a new one would have (a job may have changed it);
# false when there is none. One that is no longer empty (a process that left its job's group
# still works in it) is not used: it is removed when this launcher ends.
my @spoilt;
sub reuse_spare {
    my $cwd    = shift;
    my $parent = parent_of($cwd) // return 0;
    while (defined(my $spare = pop @{ $spares{$parent} // [] })) {
        if (!empty_folder($spare)) {
            push @spoilt, $spare;
            next;
        }
        if (rename($spare, $cwd)) {
            chmod(0777 & ~umask, $cwd);
            return 1;
        }
        rmdir($spare);
    }
    return 0;
}

sub remove_spares {
    rmdir($_) for map { @$_ } values %spares;
    -l $_ ? unlink($_) : File::Path::remove_tree($_, { safe => 1 }) for @spoilt;
    %spares = ();
}

sub errno_name {
    local $! = shift;
    for my $name (keys %!) {
        return $name if $!{$name};
    }
    return 'EIO';
}

sub kill_all {
    kill '-KILL', $_ for keys %group_of;
    kill_cgroup($_) for values %cgroup_of;
}

# Everything a job left in its cgroup, whatever session it moved to (the daemon then makes sure
# with the freezer; this pass closes its output pipes at once).
sub kill_cgroup {
    my $procs = shift;
    my ($dir) = $procs =~ m{^(.*)/[^/]+$};
    for (1 .. 3) {
        open(my $fh, '<', $procs) or return;
        my @pids = grep { /^\d+$/ } map { chomp; $_ } <$fh>;
        close $fh;
        return unless @pids;
        kill 'KILL', @pids;
        # A paused (frozen) job dies only once thawed: v1's freezer, or v2's cgroup.freeze.
        for my $thaw (['freezer.state', 'THAWED'], ['cgroup.freeze', '0']) {
            open(my $fh, '>', "$dir/$thaw->[0]") or next;
            print $fh $thaw->[1];
            close $fh;
        }
    }
}

# prlimit64(2) by number, as Perl has no setrlimit of its own (no module to load, no process of
# its own per job); `prlimit` from util-linux runs before the job on other machines.
my %PRLIMIT64 = (x86_64 => 302, aarch64 => 261, riscv64 => 261, i686 => 340, i386 => 340,
                 armv7l => 369, ppc64le => 325, s390x => 334);
my $PRLIMIT = $PRLIMIT64{(POSIX::uname())[4]};
my %RLIMIT = (cpu => 0, nproc => 6, nofile => 7, as => 9);

# [resource, packed soft and hard limit, name]: made before the fork. A CPU limit's hard one is a
# second later, so the job gets SIGXCPU (and may say why) before SIGKILL.
sub rlimits_of {
    my $option = shift;
    my @limits;
    for my $name (sort keys %RLIMIT) {
        my $value = $option->{$name} // next;
        my $hard = $name eq 'cpu' ? $value + 1 : $value;
        push @limits, [$RLIMIT{$name}, pack('QQ', $value, $hard), $name];
    }
    return @limits;
}

sub close_pipe {
    my $fileno = shift;
    my $entry  = delete $pipe_of{$fileno} or return;
    my ($key, undef, $fh, undef, $out) = @$entry;
    close $fh;
    close $out if $out;
    return if --$pipes_left{$key} > 0;
    delete $pipes_left{$key};
    my $ending = delete $ending{$key} or return;
    emit('exit', $key, @{$ending->[1]});
}

sub forward {
    my $fileno = shift;
    my $entry = $pipe_of{$fileno};
    my ($key, $fd, $fh, $file) = @$entry;
    my $got = sysread($fh, my $chunk, 65536);
    if (defined $got && $got > 0) {
        if (!defined $file) {
            emit_data($key, $fd, $chunk);
        } elsif ($entry->[4] || open($entry->[4], '>>', $file)) {
            my $out = $entry->[4];
            for (my $at = 0; $at < length $chunk;) {
                my $put = syswrite($out, $chunk, length($chunk) - $at, $at);
                last unless defined $put;    # disk full: the rest of this chunk is lost
                $at += $put;
            }
        }
    } elsif (defined $got || ($! != EINTR && $! != EAGAIN)) {
        close_pipe($fileno);
    }
}

sub launch {
    my ($key, $file, $cwd, $out, $err, @rest) = @_;
    my $nargs = shift @rest;
    my @args  = splice(@rest, 0, $nargs);
    my $nenv  = shift @rest;
    my @env   = splice(@rest, 0, $nenv);
    my %option = map { /^([^=]+)=(.*)$/ ? ($1 => $2) : ($_ => 1) } split /,/, (shift(@rest) // '');
    my @join = splice(@rest, 0, shift(@rest) // 0);
    my @rlimits = rlimits_of(\%option);
    if (@rlimits && !defined $PRLIMIT) {
        my %flag = (cpu => 'cpu', nproc => 'nproc', nofile => 'nofile', as => 'as');
        @args = ((map { "--$flag{$_->[2]}=" . join(':', unpack('QQ', $_->[1])) } @rlimits), '--', $file, @args);
        $file = 'prlimit';
        @rlimits = ();
    }
    my (%read_end, %write_end, $r, $w, $out_fh, $err_fh);
    my $give_up = sub {
        my ($code, $message) = @_;
        my $errno = errno_name($! + 0);
        close $_ for grep { defined } $r, $w, $out_fh, $err_fh, values %read_end, values %write_end;
        report_failed($key, $err, $code, $errno, clean($message));
    };
    for my $fd (grep { $option{lazy} || ($_ == 1 ? $out : $err) eq '' } 1, 2) {
        pipe($read_end{$fd}, $write_end{$fd}) or return $give_up->(126, "cannot start $file: $!");
    }
    pipe($r, $w) or return $give_up->(126, "cannot start $file: $!");
    # What the child would do in Perl is done here, before the fork: every page a child touches
    # before its exec is copied first (copy-on-write), which costs more than the work itself.
    unless ($NULL) {
        open(my $null, '<', '/dev/null') or return $give_up->(126, "cannot open /dev/null: $!");
        $NULL = $null;
    }
    $write_end{1} or open($out_fh, '>>', $out) or return $give_up->(126, "cannot open $out: $!");
    $write_end{2} or open($err_fh, '>>', $err) or return $give_up->(126, "cannot open $err: $!");
    if ($option{mkdir} && !-d $cwd && !reuse_spare($cwd)) {
        make_path($cwd, { error => \my $errors });
        -d $cwd or return $give_up->(126, "cannot create the job's folder $cwd: $!");
    }
    my @fds = map { fileno $_ } $NULL, $write_end{1} // $out_fh, $write_end{2} // $err_fh;
    my (@names, @values);
    for my $pair (@env) {
        my ($name, $value) = split /=/, $pair, 2;
        push @names, $name;
        push @values, $value;
    }
    my $pid;
    {
        # The job's variables, for the fork only: the child inherits them, this process does not keep them.
        local @ENV{@names} = @values;
        $pid = fork();
        if (defined $pid && $pid == 0) {
            # The child: a failure before exec is reported through the pipe (Perl's handles above
            # fd 2 are closed on exec, so are all the launcher's own).
            setsid();
            for my $procs (@join) {
                my $fd = POSIX::open($procs, POSIX::O_WRONLY());
                defined $fd && POSIX::write($fd, "0\n", 2)
                  or child_failed($w, 126, "cannot enter the job's cgroup $procs: $!");
                POSIX::close($fd);
            }
            for my $limit (@rlimits) {
                syscall($PRLIMIT, 0, $limit->[0], $limit->[1], 0) == 0
                  or child_failed($w, 126, "cannot set the job's $limit->[2] limit: $!");
            }
            for my $fd (0, 1, 2) {
                dup2($fds[$fd], $fd) // child_failed($w, 126, "cannot redirect fd $fd: $!");
            }
            chdir($cwd) or child_failed($w, 126, "cannot change to folder $cwd: $!");
            { no warnings 'exec'; exec { $file } $file, @args; }
            my $missing = $! == POSIX::ENOENT();
            child_failed($w, $missing ? 127 : 126, "$file: " . ($missing ? 'command not found' : "$!"));
        }
    }
    defined $pid or return $give_up->(126, "cannot start $file: $!");
    close $_ for grep { defined } $w, $out_fh, $err_fh, values %write_end;
    my $report = '';
    while (1) {
        my $got = sysread($r, my $chunk, 4096);
        if (!defined $got) {
            next if $! == EINTR;
            last;
        }
        last if $got == 0;
        $report .= $chunk;
    }
    close $r;
    if ($report ne '') {
        waitpid($pid, 0);
        close $_ for values %read_end;
        my ($code, $errno, $message) = split /\t/, $report, 3;
        return report_failed($key, $err, $code, $errno, $message);
    }
    for my $fd (keys %read_end) {
        my $file = $fd == 1 ? $out : $err;
        $pipe_of{fileno $read_end{$fd}} = [$key, $fd, $read_end{$fd}, $file eq '' ? undef : $file, undef];
        $pipes_left{$key}++;
    }
    if ($option{result}) {
        my ($pair) = grep { /^BATCHD_RESULT=/ } @env;
        $result_of{$key} = defined $pair ? substr($pair, length 'BATCHD_RESULT=') : '';
    }
    $group_of{$pid} = $key;
    $cgroup_of{$pid} = $join[0] if @join;
    $busy = time();
    emit('started', $key, $pid);
}

# The child, after a failed redirect, chdir or exec: report why through the exec pipe, then go.
sub child_failed {
    my ($w, $code, $message) = @_;
    syswrite($w, "$code\t" . errno_name($! + 0) . "\t" . clean($message));
    _exit($code);
}

# A job that could not be started: its message goes where its stderr would have gone.
sub report_failed {
    my ($key, $err, $code, $errno, $message) = @_;
    if ($err eq '') {
        emit_data($key, 2, "batchd: $message\n");
    } elsif (open(my $fh, '>>', $err)) {
        print $fh "batchd: $message\n";
        close $fh;
    }
    emit('failed', $key, $code, $errno, $message);
}

sub reap {
    $reap = 0;
    while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
        my $key = delete $group_of{$pid};
        next unless defined $key;
        my $status = $?;
        $busy = time();
        # Whatever the job left behind in its group (and cgroup) goes with it.
        kill '-KILL', $pid;
        my $cgroup = delete $cgroup_of{$pid};
        kill_cgroup($cgroup) if defined $cgroup;
        my @fields = WIFSIGNALED($status) ? ('', WTERMSIG($status)) : (WEXITSTATUS($status), 0);
        my $result = delete $result_of{$key};
        push @fields, ($result ne '' && -s $result ? 1 : 0) if defined $result;
        if ($pipes_left{$key}) {
            $ending{$key} = [time() + $DRAIN_SECONDS, \@fields];
        } else {
            emit('exit', $key, @fields);
        }
    }
}

# Output still held open after its job's end by a process that escaped the group: cut it off.
sub drain_overdue {
    my $now = time();
    for my $key (keys %ending) {
        next if $ending{$key}[0] > $now;
        close_pipe($_) for grep { $pipe_of{$_}[0] eq $key } keys %pipe_of;
    }
}

sub handle {
    my @f = split /\0/, shift, -1;
    my $op = shift @f;
    if ($op eq 'spawn') {
        launch(@f);
    } elsif ($op eq 'recycle') {
        my ($key, @paths) = @f;
        my @rest = grep { !recycle_one($_) } @paths;
        if (@rest) {
            launch($key, 'rm', '/', '', '', 2 + @rest, '-rf', '--', @rest, 0);
        } else {
            emit('exit', $key, 0, 0);
        }
    } elsif ($op eq 'kill') {
        my ($key, $signal) = @f;
        for my $pid (keys %group_of) {
            kill "-$signal", $pid if $group_of{$pid} eq $key;
        }
    }
}

emit('ready', $$);
my $buffer = '';
while (1) {
    reap() if $reap;
    my $rin = '';
    vec($rin, fileno(STDIN), 1) = 1;
    vec($rin, $_, 1) = 1 for keys %pipe_of;
    # SIGCHLD interrupts select; a timeout covers one that arrives just before select blocks:
    # short while jobs come and go, longer once they settle, none when nothing runs.
    my $timeout =
        %ending          ? 0.05
      : !%group_of       ? undef
      : time() - $busy < 2 ? 0.005
      :                    0.25;
    my $n = select(my $rout = $rin, undef, undef, $timeout);
    if ($n < 0) {
        next if $! == EINTR;
        last;
    }
    reap();
    if ($n > 0) {
        for my $fileno (keys %pipe_of) {
            forward($fileno) if vec($rout, $fileno, 1);
        }
    }
    drain_overdue() if %ending;
    next unless $n > 0 && vec($rout, fileno(STDIN), 1);
    my $got = sysread(STDIN, $buffer, 65536, length $buffer);
    if (!defined $got) {
        next if $! == EINTR || $! == EAGAIN;
        last;
    }
    last if $got == 0;
    while ((my $nl = index($buffer, "\n")) >= 0) {
        my $length = substr($buffer, 0, $nl);
        last if length($buffer) < $nl + 1 + $length;
        my $frame = substr($buffer, $nl + 1, $length);
        $buffer = substr($buffer, $nl + 1 + $length);
        handle($frame);
    }
}
kill_all();
remove_spares();
exit 0;
