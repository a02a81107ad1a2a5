;;; eglot_session.el --- eglot against groupd  -*- lexical-binding: t -*-

;; eglot (Debian's elpa-eglot, over Emacs 28's jsonrpc.el) starts `groupd stdio' as it starts any
;; language server and runs a whole session: initialize, initialized and
;; workspace/didChangeConfiguration (eglot's own), the five Group API calls through
;; `jsonrpc-request', a call answered `false' and one refused with -32602, then `eglot-shutdown'
;; (shutdown, which must be answered in time or eglot signals an error, then exit).  eglot kills
;; the process right after `exit', so the exit status it sees is not groupd's; the jsonrpc.el
;; test checks that.  Every answer is compared exactly.
;;
;;   GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb emacs --batch -l ert \
;;     -l tests/lifecycle-clients/eglot_session.el -f ert-run-tests-batch-and-exit

(require 'ert)
(load (expand-file-name "emacs_helpers" (file-name-directory load-file-name)) nil t)

;; README "From an editor": eglot
(require 'eglot)

(defun groupd-session (groupd db)
  "Start GROUPD on the database DB through eglot, call it, shut it down; return the server."
  (let ((server (eglot '(fundamental-mode) `(transient . ,default-directory) 'eglot-lsp-server
                       (list groupd "stdio" "--db" db) "groupd")))
    (should (equal (jsonrpc-request server :createGroup ["Ops" "ops"]) 1))
    (should (equal (jsonrpc-request server :createGroup '(:name "Dev")) 2))
    (should (equal (jsonrpc-request server :getGroup [1]) '(:id "1" :external_id "ops" :name "Ops")))
    (should (equal (jsonrpc-request server :updateGroup '(:group_id "1" :name "Operations")) t))
    (should (equal (jsonrpc-request server :getAllGroups nil)
                   [(:id "2" :external_id "" :name "Dev") (:id "1" :external_id "ops" :name "Operations")]))
    (should (equal (jsonrpc-request server :removeGroup [2]) t))
    (should (equal (jsonrpc-request server :getGroup [2]) :json-false))
    (should (equal (groupd-error-of (lambda () (jsonrpc-request server :getGroup ["abc"])))
                   '(-32602 "Invalid params" "group_id must be an integer")))
    (eglot-shutdown server)                ; shutdown, then exit
    server))
;; end of snippet

(ert-deftest groupd-eglot-session ()
  (let* ((groupd (or (getenv "GROUPD_BIN") "groupd"))
         (eglot-sync-connect t)         ; wait up to `eglot-connect-timeout' on a busy machine
         (server (groupd-session groupd (or (getenv "GROUPD_DB") "groupd.redb"))))
    (pcase-let ((`(,name ,version) (split-string (car (process-lines groupd "--version")))))
      (should (equal (eglot--server-info server) `(:name ,name :version ,version))))
    (should (equal (eglot--capabilities server) nil)) ; {}
    (should-not (jsonrpc-running-p server))))

(message "Emacs %s, eglot %s, jsonrpc.el %s, stdio, Content-Length"
         emacs-version
         (groupd-library-version "eglot")
         (groupd-library-version "jsonrpc"))

;;; eglot_session.el ends here
