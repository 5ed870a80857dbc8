#!/bin/sh
# Regenerates the PNGs in this directory from real frames of the ATM.
#
# It builds atm, runs `atm serve` on a scratch database and two ATMs against
# it inside a private tmux server, drives them with send-keys, captures the
# panes with their colours and renders each capture with freeze.
#
# The ATMs run with --lang: English, but for pt-BR.png, the ATM in
# Brazilian Portuguese.
#
# Needs: go, tmux, freeze (sh screenshots/install-freeze.sh: v0.2.2 built for Go 1.26).
# Usage: screenshots/make.sh            (from anywhere in the repository)
#        ONLY=pt-BR screenshots/make.sh (pt-BR.png alone)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
freeze=${FREEZE:-$(command -v freeze || echo "$(go env GOPATH)/bin/freeze")}
[ -x "$freeze" ] || { echo "freeze not found: sh screenshots/install-freeze.sh" >&2; exit 1; }
command -v tmux >/dev/null || { echo "tmux not found" >&2; exit 1; }

work=$(mktemp -d)
sock="atm-shots-$$"
port=${PORT:-17667}
addr="127.0.0.1:$port"
tm() { tmux -L "$sock" "$@"; }
cleanup() { tm kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

(cd "$root" && go build -o "$work/atm" ./cmd/atm)
export XDG_DATA_HOME="$work/data" # never touch the real database
export COLORTERM=truecolor

# wait_for PANE TEXT: wait (up to 15s) until the pane shows TEXT.
wait_for() {
	i=0
	until tm capture-pane -p -t "$1" | grep -qF -- "$2"; do
		i=$((i + 1))
		if [ "$i" -gt 300 ]; then
			echo "timed out waiting for '$2' in pane $1; it shows:" >&2
			tm capture-pane -p -t "$1" >&2
			exit 1
		fi
		sleep 0.05
	done
}

keys() { tm send-keys -t "$1" -- "$2"; }
enter() { tm send-keys -t "$1" Enter; }

# shot PANE NAME [BACKGROUND]: render the pane as it is now to NAME.png.
shot() {
	sleep 0.8 # let the clock highlight and the cursor blink settle
	# tmux leaves out a line's last cells when the program cleared them
	# rather than wrote them (the title bar's last cell): one space at the
	# end of every line gives that cell back, in the colours still active.
	tm capture-pane -p -e -t "$1" | sed 's/$/ /' >"$work/$2.ans"
	"$freeze" --language ansi --window=false --padding 20 --margin 0 \
		--background "${3:-#16161e}" --font.size 14 -o "$here/$2.png" <"$work/$2.ans" >/dev/null
	echo "wrote screenshots/$2.png"
}

# One tmux window, 161x36: ATM A (top left), ATM B (top right), the server
# (bottom). A second tmux attached to it in an outer pane lets the whole
# window, borders included, be captured as one frame.
tm -f /dev/null new-session -d -s shots -x 161 -y 36 \
	"$work/atm serve --addr $addr --db $work/bank.db"
tm set -g status off
tm set -g pane-border-style fg=colour240
tm set -g pane-active-border-style fg=colour240
wait_for shots:0.0 "serving"

# The ATM in Brazilian Portuguese: a deposit's receipt.
tm new-session -d -s pt -x 100 -y 30 "$work/atm --server $addr --lang pt-BR"
P=pt:0.0
wait_for $P "Faça seu login"
keys $P 789
enter $P
keys $P 1234
enter $P
wait_for $P "O que você deseja fazer?"
keys $P 2
wait_for $P "Valor a depositar"
keys $P "1.234,5"
enter $P
wait_for $P "Tecle s para confirmar"
keys $P s
wait_for $P "Depósito realizado"
wait_for $P "recebido aqui"
shot $P pt-BR
tm send-keys -t $P C-c
if [ "${ONLY:-}" = pt-BR ]; then exit 0; fi

tm split-window -v -b -l 24 -t shots:0.0 "$work/atm --server $addr --lang en"
tm split-window -h -l 80 -t shots:0.0 "$work/atm --server $addr --lang en"
A=shots:0.0
B=shots:0.1
S=shots:0.2

wait_for $A "Please log in"
wait_for $B "Please log in"
keys $A 123
enter $A
keys $A 1234
shot $A login
enter $A
wait_for $A "What would you like to do?"
shot $A menu

keys $B 456
enter $B
keys $B 1234
enter $B
wait_for $B "What would you like to do?"

keys $A 2
wait_for $A "Amount to deposit"
keys $A "1.234,5"
wait_for $A "= R\$ 1.234,50"
enter $A
wait_for $A "Press y to confirm"
keys $A y
wait_for $A "Deposit done"
wait_for $A "received here"
shot $A receipt

enter $A
wait_for $A "What would you like to do?"
keys $A 4
wait_for $A "Recipient"
keys $A 456
enter $A
wait_for $A "Amount to transfer"
keys $A "25"
enter $A
wait_for $A "Confirm the transfer"
wait_for $A "Press y to confirm"
shot $A transfer-confirm
keys $A y
wait_for $A "Transfer done"
wait_for $B "Money arrived"
shot $B push

enter $A
wait_for $A "What would you like to do?"
keys $A 5
wait_for $A "entries 1"
shot $A statement
enter $A
wait_for $A "Lamport timestamps"
shot $A statement-entry
tm send-keys -t $A Escape
wait_for $A "entries 1"
keys $A "?"
wait_for $A "Why a new bank greets"
shot $A legend
keys $A "?"
wait_for $A "entries 1"
tm send-keys -t $A Escape
wait_for $A "What would you like to do?"

# The whole window: both ATMs and the server's log.
tm new-session -d -s outer -x 161 -y 36 "TMUX= tmux -L $sock attach -t shots"
sleep 1
shot outer:0.0 side-by-side

# An ATM on a light terminal: the pane's background is white before the ATM
# starts, so the ATM picks its light colours.
tm new-session -d -s light -x 100 -y 30 "sleep 600"
tm set-option -w -t light window-style "bg=#ffffff,fg=#000000"
tm set-option -w -t light window-active-style "bg=#ffffff,fg=#000000"
tm respawn-pane -k -t light:0.0 "$work/atm --server $addr --lang en"
L=light:0.0
wait_for $L "Please log in"
keys $L 789
enter $L
keys $L 1234
enter $L
wait_for $L "What would you like to do?"
keys $L 2
wait_for $L "Amount to deposit"
keys $L "12,34"
enter $L
wait_for $L "Press y to confirm"
keys $L y
wait_for $L "Deposit done"
wait_for $L "received here"
shot $L light "#ffffff"

# Two ATMs and atm watch on one bank: a transfer and its push, live. A
# fresh server, so that the diagram starts with them.
waddr="127.0.0.1:$((port + 1))"
tm new-session -d -s wsrv -x 100 -y 10 "$work/atm serve --addr $waddr --db $work/watch.db"
wait_for wsrv:0.0 "serving"
token=$(cat "$work/operator.token")
tm new-session -d -s watch -x 161 -y 52 "$work/atm --server $waddr --lang en"
tm resize-window -t watch -x 161 -y 52
tm split-window -v -l 27 -t watch:0.0 "$work/atm watch --server $waddr --operator-token $token --lang en"
tm split-window -h -l 80 -t watch:0.0 "$work/atm --server $waddr --lang en"
WA=watch:0.0
WB=watch:0.1
WW=watch:0.2
wait_for $WA "Please log in"
wait_for $WB "Please log in"
keys $WA 123
enter $WA
keys $WA 1234
enter $WA
wait_for $WA "What would you like to do?"
keys $WB 456
enter $WB
keys $WB 1234
enter $WB
wait_for $WB "What would you like to do?"
keys $WA 4
wait_for $WA "Recipient"
keys $WA 456
enter $WA
wait_for $WA "Amount to transfer"
keys $WA 25
enter $WA
wait_for $WA "Press y to confirm"
keys $WA y
wait_for $WA "Transfer done"
wait_for $WB "Money arrived"
keys $WB 1 # B's next request reports that it received the push
wait_for $WB "received here"
enter $WA
wait_for $WA "What would you like to do?"
keys $WA 1 # and A's, the transfer's reply
wait_for $WA "received here"
wait_for $WW "recv push"
tm new-session -d -s wouter -x 161 -y 52 "TMUX= tmux -L $sock attach -t watch"
tm resize-window -t wouter -x 161 -y 52
sleep 1
shot wouter:0.0 watch

# A classroom over SSH: two students' ATMs, each an SSH session from
# OpenSSH's client, side by side, and the server's log below naming their
# processes. A transfer from one and its push on the other.
saddr="127.0.0.1:$((port + 2))"
sport=$((port + 3))
tm new-session -d -s ssh -x 161 -y 40 "$work/atm serve --addr $saddr --db $work/ssh.db --ssh 127.0.0.1:$sport"
tm set -g status off
tm set -g pane-border-style fg=colour240
tm set -g pane-active-border-style fg=colour240
wait_for ssh:0.0 "over SSH"
sshc="ssh -q -p $sport -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o SetEnv=LC_ALL=C.UTF-8" # the ATMs over SSH in English
tm split-window -v -b -l 28 -t ssh:0.0 "$sshc ana@localhost"
SA=ssh:0.0
wait_for $SA "Please log in" # ana's is atm-ssh-1
tm split-window -h -l 80 -t ssh:0.0 "$sshc bruno@localhost"
SB=ssh:0.1
wait_for $SB "Please log in"
keys $SA 123
enter $SA
keys $SA 1234
enter $SA
wait_for $SA "What would you like to do?"
keys $SB 456
enter $SB
keys $SB 1234
enter $SB
wait_for $SB "What would you like to do?"
keys $SA 4
wait_for $SA "Recipient"
keys $SA 456
enter $SA
wait_for $SA "Amount to transfer"
keys $SA 40
enter $SA
wait_for $SA "Press y to confirm"
keys $SA y
wait_for $SA "Transfer done"
wait_for $SB "Money arrived"
tm new-session -d -s souter -x 161 -y 40 "TMUX= tmux -L $sock attach -t ssh"
tm resize-window -t souter -x 161 -y 40
sleep 1
shot souter:0.0 ssh-classroom
