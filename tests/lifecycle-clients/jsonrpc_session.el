;;; jsonrpc_session.el --- Emacs's own jsonrpc.el against groupd  -*- lexical-binding: t -*-

;; jsonrpc.el (built into Emacs 28) starts `groupd stdio' as a plain `jsonrpc-process-connection'
;; (Content-Length framing, no lifecycle of its own) and runs a whole session: the five Group API
;; calls, a call refused with -32602 and one answered `false', then the LSP lifecycle by hand:
;; `shutdown' answers null, a call after it gets -32600 "shutting down", `exit' ends groupd with
;; status 0 although its stdin is still open.  A second session sends `exit' without `shutdown':
;; status 1.  Every answer is compared exactly.
;;
;;   GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb emacs --batch -l ert \
;;     -l tests/lifecycle-clients/jsonrpc_session.el -f ert-run-tests-batch-and-exit

(require 'ert)
(require 'jsonrpc)
(load (expand-file-name "emacs_helpers" (file-name-directory load-file-name)) nil t)

(defvar groupd-test-timeout 10 "Seconds any one wait may take.")

(defun groupd-start (groupd db)
  "Start GROUPD on DB as a jsonrpc.el connection."
  (make-instance
   'jsonrpc-process-connection
   :name "groupd"
   :process (lambda ()
              (make-process :name "groupd" :command (list groupd "stdio" "--db" db)
                            :connection-type 'pipe :coding 'utf-8-emacs-unix :noquery t
                            :stderr (get-buffer-create "*groupd stderr*")))))

(defun groupd-wait-for-exit (connection)
  "Wait until CONNECTION's process has exited; return its status and exit code."
  (let ((process (jsonrpc--process connection)))
    (with-timeout (groupd-test-timeout (error "groupd did not exit"))
      (while (process-live-p process)
        (accept-process-output process 0.1)))
    (list (process-status process) (process-exit-status process))))

(ert-deftest groupd-jsonrpc-session ()
  (let* ((groupd (or (getenv "GROUPD_BIN") "groupd"))
         (db (or (getenv "GROUPD_DB") "groupd.redb"))
         (connection (groupd-start groupd db)))
    (should (equal (jsonrpc-request connection :createGroup ["Ops" "ops"]) 1))
    (should (equal (jsonrpc-request connection :createGroup '(:name "Dev")) 2))
    (should (equal (jsonrpc-request connection :getGroup [1]) '(:id "1" :external_id "ops" :name "Ops")))
    (should (equal (jsonrpc-request connection :updateGroup '(:group_id "1" :name "Operations")) t))
    (should (equal (jsonrpc-request connection :getAllGroups nil)
                   [(:id "2" :external_id "" :name "Dev") (:id "1" :external_id "ops" :name "Operations")]))
    (should (equal (jsonrpc-request connection :removeGroup [2]) t))
    (should (equal (jsonrpc-request connection :getGroup [2]) :json-false))
    (should (equal (groupd-error-of (lambda () (jsonrpc-request connection :getGroup ["abc"])))
                   '(-32602 "Invalid params" "group_id must be an integer")))
    (should (equal (jsonrpc-request connection :shutdown nil) nil))
    (should (equal (groupd-error-of (lambda () (jsonrpc-request connection :getAllGroups nil)))
                   '(-32600 "Invalid Request" "shutting down")))
    (jsonrpc-notify connection :exit nil)
    (should (equal (groupd-wait-for-exit connection) '(exit 0)))
    ;; The database holds what was written, and exit without shutdown is status 1.
    (let ((again (groupd-start groupd db)))
      (should (equal (jsonrpc-request again :getAllGroups nil)
                     [(:id "1" :external_id "ops" :name "Operations")]))
      (jsonrpc-notify again :exit nil)
      (should (equal (groupd-wait-for-exit again) '(exit 1))))))

(message "Emacs %s, jsonrpc.el %s, stdio, Content-Length"
         emacs-version
         (groupd-library-version "jsonrpc"))

;;; jsonrpc_session.el ends here
