# bash completion for blkpipe's tools: blkcat, blkwrite, pvcat, snapctl.
# scripts/install.sh installs it as share/bash-completion/completions/NAME
# for each tool (bash-completion loads a command's file on first use); or
# source it from ~/.bashrc. Options come from a list kept by hand next to
# each tool's --help; operands complete as file names (devices, images).
# shellcheck shell=bash

_blkpipe_ddops='if= of= bs= ibs= obs= count= skip= iseek= seek= oseek= status= conv= iflag= oflag='

_blkpipe() {
	local cmd=${1##*/} cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words=
	COMPREPLY=()
	# An option's value.
	case $cmd:$prev in
	blkcat:-z | blkcat:--compress) words='lz4 zstd zstd: none' ;;
	snapctl:--backend) words='lvm lvm-thin btrfs reflink' ;;
	esac
	if [ -z "$words" ] && { [[ $cur == -* ]] || [[ $cmd == snapctl && $COMP_CWORD -eq 1 ]]; }; then
		case $cmd in
		blkcat)
			words='--bs --offset --length -q --quiet --frame -z --compress --sums --against
				--resume --progress -f --force --json -h --help --version' ;;
		blkwrite)
			words='--bs --offset --length -q --quiet --raw --framed --assume-zeroed --no-verify
				--resume-point --allow --json -h --help --version' ;;
		pvcat)
			words='-p --progress -t --timer -e --eta -r --rate -a --average-rate -b --bytes
				-I --fineta -n --numeric -q --quiet -f --force -s --size -S --stop-at-size
				-i --interval -N --name -L --rate-limit -B --buffer-size -W --wait
				-D --delay-start -C --no-splice -X --discard -w --width -H --height
				-P --pidfile --json --json-fd --stall --wire -V --version' ;;
		snapctl)
			if [ "$COMP_CWORD" -eq 1 ]; then
				words='create list remove run gc --help --version'
			else
				words='--backend --size --name --dir --freeze --pre --post --interval --warn
					--max-fill --extend --grace --timeout --older-than --json'
			fi
			;;
		esac
	fi
	if [ -n "$words" ]; then
		mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
		return
	fi
	# An operand: a file (device, image), or for blkcat and blkwrite a dd
	# operand (its value, after "=", is a word of its own: a file again).
	compopt -o filenames 2>/dev/null
	mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	if [[ $cmd == blk* && $prev != = && $cur != */* ]]; then
		mapfile -t -O ${#COMPREPLY[@]} COMPREPLY < <(compgen -W "$_blkpipe_ddops" -- "$cur")
		# "bs=" wants its value right after the "=".
		[[ ${#COMPREPLY[@]} -ne 1 || ${COMPREPLY[0]} != *= ]] || compopt -o nospace 2>/dev/null
	fi
}
complete -F _blkpipe blkcat blkwrite pvcat snapctl
