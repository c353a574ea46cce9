#!/usr/bin/perl
# batchd's job launcher: forks and execs the daemon's local jobs.
#
# Why Perl: fork + exec from a small Perl process costs what xargs pays (1,000 `true`s two at a
# time in ~0.8 s here), while Node's child_process.spawn needs about twice that, even from a small
# process. perl-base is Essential on Debian and Ubuntu; where perl is missing, the daemon uses its
# Node launcher (launcher-process.ts) instead.
#
# Protocol (launcher.ts is the other end). Requests on stdin, one frame each:
#   "<length>\n" then <length> bytes of NUL-separated fields:
#     spawn KEY FILE CWD STDOUT STDERR NARGS ARG... NENV NAME=VALUE...
#     kill KEY SIGNAL          (SIGNAL without "SIG", e.g. TERM)
# Events on stdout, one tab-separated line each:
#     started KEY PID
#     exit KEY CODE SIGNUM     (CODE empty when killed by a signal; SIGNUM 0 when not)
#     failed KEY CODE ERRNO MESSAGE   (the job could not be started; CODE 127 or 126)
# Each job runs in its own session and process group, so it can be killed as a tree; when its
# first process exits, whatever it left in its group is killed. When stdin closes (the daemon is
# gone, even by kill -9), every job here is killed and the launcher exits.
use strict;
use warnings;
use Errno qw(EINTR EAGAIN);
use POSIX qw(:sys_wait_h setsid _exit);

$| = 1;
my %group_of;    # pid => key, for jobs that are running
my $reap = 0;
my $busy = 0;    # time of the last spawn or exit
$SIG{CHLD} = sub { $reap = 1 };
# The daemon decides when jobs stop; a terminal's Ctrl-C reaches this process too.
$SIG{$_} = 'IGNORE' for qw(INT TERM HUP);
$SIG{PIPE} = 'IGNORE';

sub emit { print STDOUT join("\t", @_), "\n" }

sub clean { my $s = shift; $s =~ s/[\t\n\r]+/ /g; return $s }

sub errno_name {
    local $! = shift;
    for my $name (keys %!) {
        return $name if $!{$name};
    }
    return 'EIO';
}

sub kill_all {
    kill '-KILL', $_ for keys %group_of;
}

sub launch {
    my ($key, $file, $cwd, $out, $err, @rest) = @_;
    my $nargs = shift @rest;
    my @args  = splice(@rest, 0, $nargs);
    my $nenv  = shift @rest;
    my @env   = splice(@rest, 0, $nenv);
    my ($r, $w);
    unless (pipe($r, $w)) {
        emit('failed', $key, 126, errno_name($! + 0), clean("cannot start $file: $!"));
        return;
    }
    my $pid = fork();
    if (!defined $pid) {
        emit('failed', $key, 126, errno_name($! + 0), clean("cannot start $file: $!"));
        close $r;
        close $w;
        return;
    }
    if ($pid == 0) {
        # The child: report any failure before exec through the pipe (closed on exec).
        close $r;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE CHLD);
        my $fail = sub {
            my ($code, $message) = @_;
            my $errno = errno_name($! + 0);
            syswrite($w, "$code\t$errno\t" . clean($message));
            _exit($code);
        };
        setsid();
        for my $pair (@env) {
            my ($name, $value) = split /=/, $pair, 2;
            $ENV{$name} = $value;
        }
        open(STDIN, '<', '/dev/null') or $fail->(126, "cannot open /dev/null: $!");
        open(STDOUT, '>>', $out) or $fail->(126, "cannot open $out: $!");
        open(STDERR, '>>', $err) or $fail->(126, "cannot open $err: $!");
        chdir($cwd) or $fail->(126, "cannot change to folder $cwd: $!");
        { no warnings 'exec'; exec { $file } $file, @args; }
        my $missing = $! == POSIX::ENOENT();
        $fail->($missing ? 127 : 126, "$file: " . ($missing ? 'command not found' : "$!"));
    }
    close $w;
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
        my ($code, $errno, $message) = split /\t/, $report, 3;
        if (open(my $fh, '>>', $err)) {
            print $fh "batchd: $message\n";
            close $fh;
        }
        emit('failed', $key, $code, $errno, $message);
        return;
    }
    $group_of{$pid} = $key;
    $busy = time();
    emit('started', $key, $pid);
}

sub reap {
    $reap = 0;
    while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
        my $key = delete $group_of{$pid};
        next unless defined $key;
        my $status = $?;
        $busy = time();
        # Whatever the job left behind in its group goes with it.
        kill '-KILL', $pid;
        if (WIFSIGNALED($status)) {
            emit('exit', $key, '', WTERMSIG($status));
        } else {
            emit('exit', $key, WEXITSTATUS($status), 0);
        }
    }
}

sub handle {
    my @f = split /\0/, shift, -1;
    my $op = shift @f;
    if ($op eq 'spawn') {
        launch(@f);
    } elsif ($op eq 'kill') {
        my ($key, $signal) = @f;
        for my $pid (keys %group_of) {
            kill "-$signal", $pid if $group_of{$pid} eq $key;
        }
    }
}

my $buffer = '';
my $open   = 1;
while ($open) {
    reap() if $reap;
    my $rin = '';
    vec($rin, fileno(STDIN), 1) = 1;
    # SIGCHLD interrupts select; a timeout covers one that arrives just before select blocks:
    # short while jobs come and go, longer once they settle, none when nothing runs.
    my $timeout = !%group_of ? undef : time() - $busy < 2 ? 0.005 : 0.25;
    my $n = select(my $rout = $rin, undef, undef, $timeout);
    if ($n < 0) {
        next if $! == EINTR;
        last;
    }
    reap();
    next if $n == 0;
    my $got = sysread(STDIN, $buffer, 65536, length $buffer);
    if (!defined $got) {
        next if $! == EINTR || $! == EAGAIN;
        last;
    }
    if ($got == 0) {
        $open = 0;
        last;
    }
    while ((my $nl = index($buffer, "\n")) >= 0) {
        my $length = substr($buffer, 0, $nl);
        last if length($buffer) < $nl + 1 + $length;
        my $frame = substr($buffer, $nl + 1, $length);
        $buffer = substr($buffer, $nl + 1 + $length);
        handle($frame);
    }
}
kill_all();
exit 0;
