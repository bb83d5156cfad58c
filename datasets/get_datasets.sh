#!/usr/bin/env bash
# Download the optional datasets of Dropout Lab: CIFAR-10 (python version) and MNIST (IDX files).
#
#   bash datasets/get_datasets.sh [cifar10|mnist|all]...     (default: all)
#
# Files go into $DROPOUT_LAB_DATA when that is set, else into the folder of this script (datasets/):
#   cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch, batches.meta, readme.html
#   mnist/                 {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
# What is already there is skipped, so running it again is harmless. Every download goes to a temporary
# name, is checked against its published MD5 sum and only then moved into place: an interrupted or failed
# run leaves no half-written file behind. Without a network it fails within seconds.
#
# Mirrors can be changed with DROPOUT_LAB_CIFAR_URL and DROPOUT_LAB_MNIST_URL (base URLs; the file names
# are appended). The embedded digits set of the course needs none of this: get_data("digits").

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
TARGET="${DROPOUT_LAB_DATA:-$SCRIPT_DIR}"
CIFAR_URL="${DROPOUT_LAB_CIFAR_URL:-https://www.cs.toronto.edu/~kriz}"
MNIST_URL="${DROPOUT_LAB_MNIST_URL:-https://ossci-datasets.s3.amazonaws.com/mnist}"
CIFAR_URL="${CIFAR_URL%/}"
MNIST_URL="${MNIST_URL%/}"

# Short connection timeout and no retries: where there is no network, say so quickly.
CONNECT_TIMEOUT=8

CIFAR_TARBALL="cifar-10-python.tar.gz"
CIFAR_MD5="c58f30108f718f92721af3b95e74349a"
CIFAR_DIR_NAME="cifar-10-batches-py"
CIFAR_FILES=(data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch)

MNIST_NAMES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
# Published MD5 sums of the gzipped files (the same as in torchvision's MNIST class).
mnist_md5() {
    case "$1" in
        train-images-idx3-ubyte) echo f68b3c2dcbeaaa9fbdd348bbdeb94873 ;;
        train-labels-idx1-ubyte) echo d53e105ee54ea40749a09fcbcd1e9432 ;;
        t10k-images-idx3-ubyte)  echo 9fb629c4189551a2d022fa330f9573f3 ;;
        t10k-labels-idx1-ubyte)  echo ec29112dd5afa0611ce80d1b7f02629c ;;
    esac
}

PROG="get_datasets.sh"
usage() {
    echo "usage: bash datasets/get_datasets.sh [cifar10|mnist|all]...   (default: all)"
    echo "Downloads into \$DROPOUT_LAB_DATA if set, else into $SCRIPT_DIR."
}

# Temporary files and folders, removed on every exit; folders this run created, removed if left empty.
TEMPS=()
CREATED_DIRS=()
cleanup() {
    local p
    for p in ${TEMPS[@]+"${TEMPS[@]}"}; do rm -rf -- "$p"; done
    # Innermost first, so that a parent can become empty in turn.
    local i
    for (( i=${#CREATED_DIRS[@]}-1; i>=0; i-- )); do rmdir -- "${CREATED_DIRS[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

FAILURES=()
fail() {
    echo "$PROG: error: $*" >&2
    FAILURES+=("$*")
}

make_dir() {  # mkdir -p that remembers what it created
    local dir="$1" missing=() d="$1"
    while [ ! -d "$d" ]; do missing=("$d" ${missing[@]+"${missing[@]}"}); d="$(dirname -- "$d")"; done
    [ ${#missing[@]} -eq 0 ] && return 0
    mkdir -p -- "$dir" || return 1
    CREATED_DIRS+=("${missing[@]}")
}

# fetch URL FILE: download URL into FILE; on failure return 1 with the reason in FETCH_ERR.
FETCH_ERR=""
fetch() {
    local url="$1" out="$2"
    FETCH_ERR=""
    if command -v curl >/dev/null 2>&1; then
        if ! FETCH_ERR="$(curl --fail --location --silent --show-error \
                --connect-timeout "$CONNECT_TIMEOUT" --speed-limit 1024 --speed-time 60 \
                --output "$out" "$url" 2>&1)"; then
            FETCH_ERR="${FETCH_ERR:-curl failed}"
            return 1
        fi
    elif command -v wget >/dev/null 2>&1; then
        if ! FETCH_ERR="$(wget --no-verbose --tries=1 --connect-timeout="$CONNECT_TIMEOUT" \
                --dns-timeout="$CONNECT_TIMEOUT" --read-timeout=60 -O "$out" "$url" 2>&1)"; then
            FETCH_ERR="wget: ${FETCH_ERR:-failed}"
            return 1
        fi
    else
        FETCH_ERR="neither curl nor wget is installed"
        return 1
    fi
    FETCH_ERR=""
}

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum -- "$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then  # macOS
        md5 -q -- "$1"
    else
        python3 -c 'import hashlib, sys; print(hashlib.md5(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
    fi
}

cifar_complete() {
    local f
    for f in "${CIFAR_FILES[@]}"; do [ -f "$1/$f" ] || return 1; done
}

get_cifar10() {
    local dest="$TARGET/$CIFAR_DIR_NAME"
    if cifar_complete "$dest"; then
        echo "cifar10: already present in $dest, skipping."
        return 0
    fi
    local url="$CIFAR_URL/$CIFAR_TARBALL" tmp xdir f sum
    # Temporary names inside the target folder, so that the final mv is a rename on the same disk.
    tmp="$(mktemp "$TARGET/.$CIFAR_TARBALL.XXXXXX")" || { fail "cannot write into $TARGET"; return 1; }
    TEMPS+=("$tmp")
    echo "cifar10: downloading $url (about 163 MB) ..."
    if ! fetch "$url" "$tmp"; then
        fail "could not download CIFAR-10 ($CIFAR_TARBALL) from $url: $FETCH_ERR"
        return 1
    fi
    sum="$(md5_of "$tmp")"
    if [ "$sum" != "$CIFAR_MD5" ]; then
        fail "CIFAR-10 download from $url is corrupt: MD5 $sum, expected $CIFAR_MD5"
        return 1
    fi
    xdir="$(mktemp -d "$TARGET/.cifar-extract.XXXXXX")"
    TEMPS+=("$xdir")
    if ! tar -xzf "$tmp" -C "$xdir" --no-same-owner; then
        fail "could not unpack $CIFAR_TARBALL (downloaded from $url)"
        return 1
    fi
    if ! cifar_complete "$xdir/$CIFAR_DIR_NAME"; then
        fail "$CIFAR_TARBALL from $url does not hold the expected $CIFAR_DIR_NAME/ files"
        return 1
    fi
    if [ ! -e "$dest" ]; then
        mv -- "$xdir/$CIFAR_DIR_NAME" "$dest" || { fail "could not move the CIFAR-10 files to $dest"; return 1; }
    else
        # An incomplete folder from earlier: add what is missing, keep what is there.
        for f in "$xdir/$CIFAR_DIR_NAME"/*; do
            [ -e "$dest/$(basename -- "$f")" ] && continue
            mv -- "$f" "$dest/" || { fail "could not move $(basename -- "$f") to $dest"; return 1; }
        done
    fi
    echo "cifar10: ready in $dest"
}

mnist_present() {  # mnist_present DIR NAME: the file is there, plain or gzipped
    [ -f "$1/$2" ] || [ -f "$1/$2.gz" ]
}

get_mnist() {
    local dest="$TARGET/mnist" name url tmp sum missing=0
    for name in "${MNIST_NAMES[@]}"; do mnist_present "$dest" "$name" || missing=1; done
    if [ "$missing" -eq 0 ]; then
        echo "mnist: already present in $dest, skipping."
        return 0
    fi
    make_dir "$dest" || { fail "cannot create $dest"; return 1; }
    for name in "${MNIST_NAMES[@]}"; do
        mnist_present "$dest" "$name" && continue
        url="$MNIST_URL/$name.gz"
        tmp="$(mktemp "$dest/.$name.gz.XXXXXX")" || { fail "cannot write into $dest"; return 1; }
        TEMPS+=("$tmp")
        echo "mnist: downloading $url ..."
        if ! fetch "$url" "$tmp"; then
            # Stop at the first failure: the other files come from the same place.
            fail "could not download MNIST file $name.gz from $url: $FETCH_ERR"
            return 1
        fi
        sum="$(md5_of "$tmp")"
        if [ "$sum" != "$(mnist_md5 "$name")" ]; then
            fail "MNIST file $name.gz from $url is corrupt: MD5 $sum, expected $(mnist_md5 "$name")"
            return 1
        fi
        mv -- "$tmp" "$dest/$name.gz" || { fail "could not move $name.gz to $dest"; return 1; }
    done
    echo "mnist: ready in $dest"
}

# ---- arguments -------------------------------------------------------------------------------------
WANT_CIFAR=0
WANT_MNIST=0
[ $# -eq 0 ] && set -- all
for arg in "$@"; do
    case "$arg" in
        cifar10|cifar-10|CIFAR10|CIFAR-10) WANT_CIFAR=1 ;;
        mnist|MNIST) WANT_MNIST=1 ;;
        all) WANT_CIFAR=1; WANT_MNIST=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$PROG: error: unknown dataset '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

if ! make_dir "$TARGET" || [ ! -w "$TARGET" ]; then
    echo "$PROG: error: cannot write into the datasets folder $TARGET" >&2
    exit 1
fi

# Each dataset is tried even if the other failed; failures are collected and reported at the end.
if [ "$WANT_CIFAR" -eq 1 ]; then get_cifar10 || true; fi
if [ "$WANT_MNIST" -eq 1 ]; then get_mnist || true; fi

if [ ${#FAILURES[@]} -gt 0 ]; then
    {
        echo
        echo "$PROG: ${#FAILURES[@]} download(s) failed; no partial files were left in $TARGET."
        echo "Check the network connection (or point DROPOUT_LAB_CIFAR_URL / DROPOUT_LAB_MNIST_URL at a"
        echo "mirror) and run this script again; what is already downloaded is kept."
        echo "The embedded digits set needs no download: get_data(\"digits\")."
    } >&2
    exit 1
fi
echo "Done. Datasets are in $TARGET"
