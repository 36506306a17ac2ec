#!/bin/bash
# Start script of a Linux runner (the launch template's user data; infra/build.py splices it in).
#
# - Every wait is bounded; when one runs out, or any step fails, the instance terminates itself.
# - The token parameter (docs/REFERENCE.md §4) is read once, deleted at once, and never
#   printed: the secret travels to the runner in ACTIONS_RUNNER_INPUT_* variables, not on a
#   command line.
# - An ephemeral runner terminates its instance when its one job is done.
# - The debug option (EnableUserDataDebugLogging=true-logs-secrets) traces every command, and
#   so PRINTS THE SECRETS. It is off by default.
# @@SETTINGS@@
set -euo pipefail

: "${GHR_USER_DATA_DEBUG:=false}"
: "${GHR_RUNNER_DIR:=/opt/actions-runner}"
: "${GHR_LOG_FILE:=/var/log/user-data.log}"
: "${GHR_IMDS_URL:=http://169.254.169.254}"
: "${GHR_TOKEN_WAIT_SECONDS:=300}"
: "${GHR_TOOL_TIMEOUT_SECONDS:=900}"
: "${GHR_CONSOLE:=/dev/console}"
# AWS CLI: retry throttling and transient errors itself, a bounded number of times.
export AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=8

exec > >(tee -a "$GHR_LOG_FILE" | logger -t user-data -s 2>"$GHR_CONSOLE") 2>&1
if [ "$GHR_USER_DATA_DEBUG" = "true-logs-secrets" ]; then
  echo "WARNING: user-data debug logging is on: the runner's registration secret WILL be logged"
  set -x
fi

step="start"
instance_id=""
region=""
agent_mode=""
runner_started="false"

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) start-runner [$step]: $*"; }

terminate_self() {
  log "terminating instance ${instance_id:-unknown}"
  if [ -n "$instance_id" ] && [ -n "$region" ] &&
    aws ec2 terminate-instances --instance-ids "$instance_id" --region "$region" >/dev/null; then
    return 0
  fi
  # The launch template's shutdown behaviour is terminate.
  shutdown -h now
}

on_exit() {
  local code=$?
  if [ "$code" -ne 0 ]; then
    log "start failed with exit code $code"
  elif [ "$agent_mode" = "ephemeral" ] && [ "$runner_started" = "true" ]; then
    log "ephemeral runner finished"
  else
    return 0
  fi
  if [ "${enable_cloudwatch:-false}" = "true" ]; then
    sleep 10 # let the CloudWatch agent ship the last lines
  fi
  terminate_self
}
trap on_exit EXIT

# Sleep `$1` seconds with exponential backoff state in `delay`; fail when `$2` seconds are spent.
waited=0
delay=1
backoff() {
  local limit=$1
  if [ "$waited" -ge "$limit" ]; then
    return 1
  fi
  sleep "$delay"
  waited=$((waited + delay))
  delay=$((delay * 2 > 15 ? 15 : delay * 2))
}
reset_backoff() { waited=0 delay=1; }

imds_token=""
imds_get() {
  curl -sf --max-time 3 -H "X-aws-ec2-metadata-token: $imds_token" "$GHR_IMDS_URL/latest/$1"
}

read_metadata() {
  step="imds"
  reset_backoff
  until imds_token=$(curl -sf --max-time 3 -X PUT "$GHR_IMDS_URL/latest/api/token" \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 21600"); do
    backoff 120 || { log "no IMDSv2 token after ${waited}s"; return 1; }
  done
  instance_id=$(imds_get meta-data/instance-id)
  region=$(imds_get meta-data/placement/region)
  log "instance $instance_id in $region"
}

# A tag of this instance: from IMDS when instance tags are exposed there, else from EC2.
instance_tag() {
  local value
  if value=$(imds_get "meta-data/tags/instance/$1"); then
    echo "$value"
    return 0
  fi
  aws ec2 describe-tags --region "$region" \
    --filters "Name=resource-id,Values=$instance_id" "Name=key,Values=$1" \
    --query 'Tags[0].Value' --output text
}

config_value() {
  aws ssm get-parameter --region "$region" --name "$config_path/$1" \
    --query Parameter.Value --output text
}

read_config() {
  step="config"
  config_path=$(instance_tag ghr:ssm_config_path)
  runner_name_prefix=$(instance_tag ghr:runner_name_prefix || true)
  [ "$runner_name_prefix" = "None" ] && runner_name_prefix=""
  if [ -z "$config_path" ] || [ "$config_path" = "None" ]; then
    log "tag ghr:ssm_config_path is missing"
    return 1
  fi
  run_as=$(config_value run_as)
  agent_mode=$(config_value agent_mode)
  enable_jit_config=$(config_value enable_jit_config)
  enable_cloudwatch=$(config_value enable_cloudwatch)
  token_path=$(config_value token_path)
  binaries_uri=$(config_value runner_binaries_s3_uri)
  log "config $config_path: run_as=$run_as agent_mode=$agent_mode jit=$enable_jit_config"
}

pre_install() {
  step="pre-install"
# @@PRE_INSTALL@@
  :
}

post_install() {
  step="post-install"
# @@POST_INSTALL@@
  :
}

install_packages() {
  if command -v dnf >/dev/null; then
    timeout "$GHR_TOOL_TIMEOUT_SECONDS" dnf install -y -q docker git jq amazon-cloudwatch-agent
  elif command -v apt-get >/dev/null; then
    timeout "$GHR_TOOL_TIMEOUT_SECONDS" apt-get update -q
    timeout "$GHR_TOOL_TIMEOUT_SECONDS" apt-get install -y -q docker.io git jq
  fi
  if command -v systemctl >/dev/null && systemctl list-unit-files docker.service >/dev/null; then
    systemctl enable --now docker || log "docker did not start"
  fi
}

# The runner archive must match the SHA-256 published with it: sync_runner_binaries records it on
# the S3 object (metadata runner-sha256), GitHub in the release notes between SHA markers.
verify_archive() {
  local actual
  actual=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$actual" = "$2" ] ||
    { log "runner archive SHA-256 is $actual, expected $2: not installing it"; return 1; }
  log "runner archive SHA-256 verified"
}

download_runner() {
  local archive="$GHR_RUNNER_DIR/actions-runner.tar.gz" bucket key sha arch release version
  bucket=${binaries_uri#s3://} key=${bucket#*/} bucket=${bucket%%/*}
  # One GetObject returns the bytes and their metadata together, so the checksum is the one
  # stored with these bytes even while the syncer replaces the object. "none": the syncer is
  # off (EnableRunnerBinariesSyncer), so the bucket holds nothing current.
  if [ "$binaries_uri" = none ]; then
    log "runner binaries syncer off; downloading from GitHub"
  elif sha=$(aws s3api get-object --region "$region" --bucket "$bucket" --key "$key" \
    --query 'Metadata."runner-sha256"' --output text "$archive"); then
    if [ -n "$sha" ] && [ "$sha" != "None" ]; then
      verify_archive "$archive" "$sha"
      return
    fi
    log "the S3 copy carries no runner-sha256 (written by an older syncer): not verified"
    return 0
  else
    log "runner not in the S3 cache ($binaries_uri); downloading from GitHub"
  fi
  arch=$(uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')
  release=$(curl -fsSL --retry 5 --max-time 30 \
    https://api.github.com/repos/actions/runner/releases/latest)
  version=$(sed -n 's/.*"tag_name": *"v\([^"]*\)".*/\1/p' <<<"$release" | head -n1)
  # The marker's ">" may come JSON-escaped as \u003e.
  sha=$(sed -n 's/.*BEGIN SHA linux-'"$arch"' --\(>\|\\u003e\)\([0-9a-f]\{64\}\).*/\2/p' \
    <<<"$release" | head -n1)
  [ -n "$version" ] && [ -n "$sha" ] ||
    { log "no runner release with a linux-$arch SHA-256 found"; return 1; }
  curl -fsSL --retry 5 --max-time 600 -o "$archive" \
    "https://github.com/actions/runner/releases/download/v$version/actions-runner-linux-$arch-$version.tar.gz"
  verify_archive "$archive" "$sha"
}

install_runner() {
  step="install"
  if id -u "$run_as" >/dev/null 2>&1; then :; else useradd --create-home "$run_as"; fi
  if [ -x "$GHR_RUNNER_DIR/config.sh" ]; then
    log "runner already installed (prebuilt image)"
  else
    install_packages
    mkdir -p "$GHR_RUNNER_DIR"
    download_runner
    tar -xzf "$GHR_RUNNER_DIR/actions-runner.tar.gz" -C "$GHR_RUNNER_DIR"
    rm -f "$GHR_RUNNER_DIR/actions-runner.tar.gz"
    if [ -x "$GHR_RUNNER_DIR/bin/installdependencies.sh" ]; then
      timeout "$GHR_TOOL_TIMEOUT_SECONDS" "$GHR_RUNNER_DIR/bin/installdependencies.sh" ||
        log "installdependencies.sh failed; the runner may lack libraries"
    fi
  fi
  if getent group docker >/dev/null; then usermod -aG docker "$run_as"; fi
  chown -R "$run_as" "$GHR_RUNNER_DIR"
}

start_cloudwatch_agent() {
  step="cloudwatch"
  if [ "$enable_cloudwatch" != "true" ]; then return 0; fi
  amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
    -c "ssm:$config_path/cloudwatch_agent_config_runner" ||
    log "the CloudWatch agent did not start; logs stay on the instance"
}

# Reads the token parameter into `runner_secret` (never printed), then deletes the parameter.
take_token() {
  step="token"
  local name="$token_path/$instance_id"
  reset_backoff
  until runner_secret=$(aws ssm get-parameter --region "$region" --name "$name" \
    --with-decryption --query Parameter.Value --output text 2>/dev/null) &&
    [ -n "$runner_secret" ]; do
    backoff "$GHR_TOKEN_WAIT_SECONDS" ||
      { log "no runner configuration in $name after ${waited}s"; return 1; }
  done
  log "runner configuration received"
  aws ssm delete-parameter --region "$region" --name "$name" ||
    log "could not delete $name; scale-down removes stale tokens"
}

# Runs the runner's `$1` script as the run-as user, passing only the named variables along.
as_runner() {
  local script=$1 keep=$2
  shift 2
  if [ "$run_as" = "root" ]; then
    export RUNNER_ALLOW_RUNASROOT=1
    (cd "$GHR_RUNNER_DIR" && "./$script" "$@")
  elif [ -n "$keep" ]; then
    (cd "$GHR_RUNNER_DIR" && sudo --preserve-env="$keep" -u "$run_as" -- "./$script" "$@")
  else
    (cd "$GHR_RUNNER_DIR" && sudo -u "$run_as" -- "./$script" "$@")
  fi
}

# Splits $1 into the array `words` as sh splits a line of quoted words (docs/REFERENCE.md §4; scale-up
# quotes with Python's shlex.quote): blanks separate words, '...' is literal, "..." is literal
# but for \\ \" \$ \` and \<newline>, and an unquoted \ quotes the next character. Nothing is
# expanded or run, and never through eval: an unquoted character that sh would expand or read
# as an operator ($ ` ; & | < > ( ) * ? [ newline, a leading ~ or #) refuses the value (return 1),
# as does an unterminated quote. tests/fixtures/config_args_vectors.json holds the cases.
split_words() {
  local LC_ALL=C rest=$1 word="" started="false" c
  words=()
  while [ -n "$rest" ]; do
    c=${rest:0:1} rest=${rest:1}
    case "$c" in
      " " | $'\t')
        [ "$started" = "true" ] && words+=("$word")
        word="" started="false" ;;
      "'")
        case "$rest" in *"'"*) ;; *) return 1 ;; esac
        word+=${rest%%"'"*} rest=${rest#*"'"} started="true" ;;
      '"')
        started="true"
        while :; do
          [ -n "$rest" ] || return 1
          c=${rest:0:1} rest=${rest:1}
          case "$c" in
            '"') break ;;
            '$' | '`') return 1 ;;
            "\\")
              case "${rest:0:1}" in
                '$' | '`' | '"' | "\\") word+=${rest:0:1} rest=${rest:1} ;;
                $'\n') rest=${rest:1} ;;
                *) word+=$c ;;
              esac ;;
            *) word+=$c ;;
          esac
        done ;;
      "\\")
        [ -n "$rest" ] || return 1
        [ "${rest:0:1}" = $'\n' ] || word+=${rest:0:1} started="true"
        rest=${rest:1} ;;
      '$' | '`' | ';' | '&' | '|' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | $'\n') return 1 ;;
      '~' | '#')
        [ "$started" = "true" ] || return 1
        word+=$c ;;
      *) word+=$c started="true" ;;
    esac
  done
  [ "$started" = "false" ] || words+=("$word")
}

configure_runner() {
  step="configure"
  local args=() words=() word next_is_token="false"
  # config.sh arguments of docs/REFERENCE.md §4; the token leaves the command line for the
  # environment, where `ps` cannot show it to other users.
  split_words "$runner_secret" ||
    { log "the runner configuration is not a line of shell-quoted words"; return 1; }
  for word in "${words[@]}"; do
    if [ "$next_is_token" = "true" ]; then
      export ACTIONS_RUNNER_INPUT_TOKEN="$word"
      next_is_token="false"
    elif [ "$word" = "--token" ]; then
      next_is_token="true"
    else
      args+=("$word")
    fi
  done
  as_runner config.sh ACTIONS_RUNNER_INPUT_TOKEN --unattended \
    --name "$runner_name_prefix$instance_id" --work _work "${args[@]}"
  unset ACTIONS_RUNNER_INPUT_TOKEN
  local agent_id
  agent_id=$(sed -n 's/.*"agentId": *\([0-9]*\).*/\1/p' "$GHR_RUNNER_DIR/.runner" 2>/dev/null || true)
  if [ -n "$agent_id" ]; then
    aws ec2 create-tags --region "$region" --resources "$instance_id" \
      --tags "Key=ghr:github_runner_id,Value=$agent_id" || log "could not tag the runner id"
  fi
}

start_runner() {
  step="run"
  log "starting the runner as $run_as ($agent_mode) after $(cut -d. -f1 /proc/uptime)s of uptime"
  if [ "$agent_mode" = "ephemeral" ]; then
    runner_started="true"
    if [ "$enable_jit_config" = "true" ]; then
      export ACTIONS_RUNNER_INPUT_JITCONFIG="$runner_secret"
      runner_secret=""
      as_runner run.sh ACTIONS_RUNNER_INPUT_JITCONFIG || log "runner exited with $?"
    else
      configure_runner
      runner_secret=""
      as_runner run.sh "" || log "runner exited with $?"
    fi
    return 0
  fi
  configure_runner
  runner_secret=""
  step="service"
  (cd "$GHR_RUNNER_DIR" && ./svc.sh install "$run_as" && ./svc.sh start)
  log "runner service started"
}

main() {
  read_metadata
  read_config
  pre_install
  install_runner
  post_install
  start_cloudwatch_agent
  take_token
  start_runner
}

main
