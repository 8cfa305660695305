# Sourced: a private apt view (its own sources, lists, cache and status) that
# never touches the machine's apt configuration.
#   apt_view DIR   with DIR/sources.list written by the caller; sets APT_OPTS.
apt_view() {
  local dir=$1
  mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  touch "$dir/status"
  APT_OPTS=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::archives=$dir/archives"
    -o "Dir::State::status=$dir/status" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
}
