;;; emacs_helpers.el --- shared by the Emacs client tests  -*- lexical-binding: t -*-

;; Loaded by eglot_session.el and jsonrpc_session.el.

(require 'jsonrpc)
(require 'lisp-mnt)

(defun groupd-error-of (thunk)
  "Call THUNK; return the code, message and data of the JSON-RPC error it must signal."
  (condition-case err
      (progn (funcall thunk) (error "No JSON-RPC error signalled"))
    (jsonrpc-error (list (alist-get 'jsonrpc-error-code (cdr err))
                         (alist-get 'jsonrpc-error-message (cdr err))
                         (alist-get 'jsonrpc-error-data (cdr err))))))

(defun groupd-library-version (library)
  "The Version header of LIBRARY's source."
  (with-temp-buffer
    (insert-file-contents (find-library-name library))
    (lm-header "Version")))

;;; emacs_helpers.el ends here
