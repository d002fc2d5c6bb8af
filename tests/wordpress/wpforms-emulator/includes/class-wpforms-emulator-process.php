<?php
/**
 * Submission processing: WPForms_Process, reduced to what FormRelay touches.
 *
 * A submission is a POST to the front end (processed on `wp`, as WPForms does)
 * or to admin-ajax.php with action=wpforms_submit (WPForms' AJAX submit). The
 * hooks fire in WPForms' order:
 *
 *   wpforms_process_before_form_data (filter), wpforms_process_before_filter (filter),
 *   wpforms_process_before + _{form_id}       (entry, form_data)
 *   wpforms_process_validate_{type}           (field_id, field_submit, form_data)
 *   wpforms_process_initial_errors (filter)   -> stop on errors
 *   wpforms_process_format_{type}, wpforms_process_format_after, wpforms_process_filter (filter)
 *   wpforms_process + _{form_id}              (fields, entry, form_data)
 *   spam check (the honeypot wpforms[hp])     -> spam stops here unless the form keeps spam
 *   wpforms_process_after_filter (filter)     (fields, entry, form_data); files move at PHP_INT_MAX
 *   wpforms_process_entry_save                (fields, entry, form_id, form_data); Pro saves here
 *   wpforms_process_entry_saved               (fields, entry, form_data, entry_id, payment_id)
 *   wpforms_process_complete + _{form_id}     (fields, entry, form_data, entry_id); not for spam
 *   wpforms_process_after                     (fields, entry_id, form_data); always, from listen()
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Processes a submission and answers it.
 */
final class WPForms_Emulator_Process {

	/**
	 * Errors by form id, as WPForms keeps them.
	 *
	 * @var array
	 */
	public $errors = array();

	/**
	 * Formatted fields.
	 *
	 * @var array
	 */
	public $fields = array();

	/**
	 * The stored entry's id; 0 when nothing was stored.
	 *
	 * @var int
	 */
	public $entry_id = 0;

	/**
	 * Form data of the submission being processed (null before a form was found).
	 *
	 * @var array|null
	 */
	public $form_data;

	/**
	 * Why the submission is spam ('' when it is not).
	 *
	 * @var string
	 */
	public $spam_reason = '';

	/**
	 * Outcome for the response: '' (not processed), 'complete', 'spam' or 'error'.
	 *
	 * @var string
	 */
	private $result = '';

	/**
	 * The file-type relaxation in force while processing (see README.md).
	 *
	 * @var callable|null
	 */
	private $relax_file_types;

	/**
	 * Register the entry points.
	 */
	public function hooks(): void {
		add_action( 'wp', array( $this, 'listen' ) );
		add_action( 'template_redirect', array( $this, 'respond' ), 0 );
		add_action( 'wp_ajax_wpforms_submit', array( $this, 'ajax_submit' ) );
		add_action( 'wp_ajax_nopriv_wpforms_submit', array( $this, 'ajax_submit' ) );
	}

	/**
	 * Process a posted form, if this request carries one (WPForms_Process::listen()).
	 */
	public function listen(): void {
		// phpcs:disable WordPress.Security.NonceVerification.Missing
		$form_id = ! empty( $_POST['wpforms']['id'] ) ? absint( $_POST['wpforms']['id'] ) : 0;
		if ( ! $form_id ) {
			return;
		}
		$this->relax_file_types_unless_strict();
		try {
			// phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized
			$this->process( wp_unslash( (array) $_POST['wpforms'] ) );
		} finally {
			$this->restore_file_types();
		}
		// phpcs:enable WordPress.Security.NonceVerification.Missing

		do_action( 'wpforms_process_after', $this->fields, $this->entry_id, $this->form_data );
	}

	/**
	 * Process the form entry (WPForms_Process::process()).
	 *
	 * @param array $entry The unslashed $_POST['wpforms'].
	 */
	public function process( array $entry ): void {
		$this->errors      = array();
		$this->fields      = array();
		$this->entry_id    = 0;
		$this->spam_reason = '';
		$this->result      = 'error';

		$form_id = absint( $entry['id'] ?? 0 );
		$form    = WPForms_Emulator_Forms::get( $form_id );

		if ( ! $form || 'publish' !== $form->post_status ) {
			$this->errors[ $form_id ]['header'] = 'Invalid form.';
			return;
		}

		$this->form_data = (array) apply_filters( 'wpforms_process_before_form_data', WPForms_Emulator_Forms::decode( $form ), $entry );

		if ( ! isset( $this->form_data['fields'], $this->form_data['id'] ) ) {
			$this->errors[ $form_id ]['header'] = 'Your form has not been submitted because data is missing from the entry.';
			return;
		}
		if ( ! WPForms_Emulator::is_pro() && WPForms_Emulator_Forms::has_field_type( $this->form_data, 'file-upload' ) ) {
			// WPForms Lite has no file-upload field; the emulator refuses such forms in Lite mode.
			$this->errors[ $form_id ]['header'] = 'WPForms Emulator (Lite mode): this form has a file-upload field, which Lite does not have.';
			return;
		}

		$entry = apply_filters( 'wpforms_process_before_filter', $entry, $this->form_data );

		do_action( 'wpforms_process_before', $entry, $this->form_data );
		do_action( "wpforms_process_before_{$form_id}", $entry, $this->form_data );

		foreach ( $this->form_data['fields'] as $field_properties ) {
			$field_id     = $field_properties['id'];
			$field_type   = $field_properties['type'];
			$field_submit = $entry['fields'][ $field_id ] ?? '';

			do_action( "wpforms_process_validate_{$field_type}", $field_id, $field_submit, $this->form_data );
		}

		$errors = apply_filters( 'wpforms_process_initial_errors', $this->errors, $this->form_data );

		if ( ! empty( $errors[ $form_id ] ) ) {
			if ( empty( $errors[ $form_id ]['header'] ) && empty( $errors[ $form_id ]['footer'] ) ) {
				$errors[ $form_id ]['header'] = 'Form has not been submitted, please see the errors below.';
			}
			$this->errors = $errors;
			return;
		}

		// Pass the form's creation date into the form data.
		$this->form_data['created'] = $form->post_date;

		foreach ( (array) $this->form_data['fields'] as $field_properties ) {
			$field_id     = $field_properties['id'];
			$field_type   = $field_properties['type'];
			$field_submit = $entry['fields'][ $field_id ] ?? '';

			do_action( "wpforms_process_format_{$field_type}", $field_id, $field_submit, $this->form_data );
		}

		do_action( 'wpforms_process_format_after', $this->form_data );

		$this->fields = apply_filters( 'wpforms_process_filter', $this->fields, $entry, $this->form_data );

		do_action( 'wpforms_process', $this->fields, $entry, $this->form_data );
		do_action( "wpforms_process_{$form_id}", $this->fields, $entry, $this->form_data );

		// Spam checks. The legacy honeypot: a hidden input only robots fill.
		if ( ! empty( $entry['hp'] ) ) {
			$this->spam_reason = 'Honeypot';
			if ( empty( $this->form_data['settings']['store_spam_entries'] ) ) {
				$this->result = 'spam';
				return; // Fail silently: nothing stored, no complete.
			}
			$this->form_data['spam_reason'] = $this->spam_reason;
		}

		$this->fields = apply_filters( 'wpforms_process_after_filter', $this->fields, $entry, $this->form_data );

		// One last error check - don't proceed if there are any errors.
		if ( ! empty( $this->errors[ $form_id ] ) ) {
			if ( empty( $this->errors[ $form_id ]['header'] ) && empty( $this->errors[ $form_id ]['footer'] ) ) {
				$this->errors[ $form_id ]['header'] = 'Form has not been submitted, please see the errors below.';
			}
			return;
		}

		$this->entry_id = $this->entry_save( $this->fields, $entry, $this->form_data['id'], $this->form_data );
		$payment_id     = 0;

		do_action( 'wpforms_process_entry_saved', $this->fields, $entry, $this->form_data, $this->entry_id, $payment_id );

		// Notification emails would go here; the emulator sends none.

		// phpcs:disable WordPress.Security.NonceVerification.Missing
		$_POST['wpforms']['complete'] = $this->fields;
		$_POST['wpforms']['entry_id'] = $this->entry_id;
		// phpcs:enable WordPress.Security.NonceVerification.Missing

		if ( '' !== $this->spam_reason ) {
			$this->result = 'spam'; // Stored as spam: never "complete".
			return;
		}

		do_action( 'wpforms_process_complete', $this->fields, $entry, $this->form_data, $this->entry_id );
		do_action( "wpforms_process_complete_{$form_id}", $this->fields, $entry, $this->form_data, $this->entry_id );

		$this->result = 'complete';
	}

	/**
	 * Hand the entry to whoever stores it (Pro) and return its id (0: not stored).
	 *
	 * @param array      $fields    Fields.
	 * @param array      $entry     The unslashed $_POST['wpforms'].
	 * @param int|string $form_id   Form id.
	 * @param array      $form_data Form data.
	 */
	public function entry_save( $fields, $entry, $form_id, $form_data ): int {
		do_action( 'wpforms_process_entry_save', $fields, $entry, $form_id, $form_data );
		return (int) $this->entry_id;
	}

	/**
	 * The response to a processed front-end POST: a small confirmation page.
	 */
	public function respond(): void {
		if ( '' === $this->result ) {
			return;
		}
		status_header( 200 );
		nocache_headers();
		$this->send_result_headers();
		header( 'Content-Type: text/html; charset=utf-8' );
		$title = 'error' === $this->result ? 'Form not submitted' : 'Thank you';
		$text  = 'error' === $this->result
			? implode( ' ', $this->error_messages() )
			: 'Thanks for contacting us! We will be in touch with you shortly.';
		printf(
			"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n<body>\n<!-- wpforms-emulator result=%s entry_id=%d -->\n<div class=\"%s\">%s</div>\n</body></html>\n",
			esc_html( $title ),
			esc_attr( $this->result ),
			(int) $this->entry_id,
			'error' === $this->result ? 'wpforms-error-container' : 'wpforms-confirmation-container-full',
			esc_html( $text )
		);
		exit;
	}

	/**
	 * WPForms' AJAX submission: same processing, a JSON answer.
	 */
	public function ajax_submit(): void {
		// phpcs:ignore WordPress.Security.NonceVerification.Missing
		if ( empty( $_POST['wpforms']['id'] ) ) {
			wp_send_json_error();
		}
		$this->listen();
		$this->send_result_headers();
		if ( 'error' === $this->result ) {
			wp_send_json_error( array( 'errors' => $this->errors ) );
		}
		wp_send_json_success(
			array(
				'confirmation' => '<div class="wpforms-confirmation-container-full"><p>Thanks for contacting us! We will be in touch with you shortly.</p></div>',
			)
		);
	}

	/**
	 * Headers that tell a test what happened.
	 */
	private function send_result_headers(): void {
		header( 'X-WPForms-Emulator-Result: ' . $this->result );
		header( 'X-WPForms-Emulator-Entry: ' . (int) $this->entry_id );
		if ( 'error' === $this->result ) {
			header( 'X-WPForms-Emulator-Error: ' . rawurlencode( implode( ' ', $this->error_messages() ) ) );
		}
	}

	/**
	 * The error texts, flattened (field errors as "field N: message").
	 *
	 * @return string[]
	 */
	private function error_messages(): array {
		$messages = array();
		foreach ( $this->errors as $form_errors ) {
			foreach ( (array) $form_errors as $key => $message ) {
				$text       = is_array( $message ) ? implode( ' ', array_map( 'strval', $message ) ) : (string) $message;
				$messages[] = is_int( $key ) ? "field $key: $text" : $text;
			}
		}
		return $messages;
	}

	/**
	 * Unless strict file types are on, relax WordPress's content check for this
	 * submission's uploads to the name's extension, as mime-relaxing plugins do.
	 */
	private function relax_file_types_unless_strict(): void {
		if ( '1' === (string) get_option( WPForms_Emulator::STRICT_FILE_TYPES_OPTION, '0' ) ) {
			return;
		}
		$this->relax_file_types = static function ( $data, $file, $filename ) {
			if ( ! empty( $data['ext'] ) && ! empty( $data['type'] ) ) {
				return $data;
			}
			$by_name = wp_check_filetype( (string) $filename );
			if ( empty( $by_name['ext'] ) || empty( $by_name['type'] ) ) {
				return $data; // The extension itself is not allowed.
			}
			return array(
				'ext'             => $by_name['ext'],
				'type'            => $by_name['type'],
				'proper_filename' => false,
			);
		};
		add_filter( 'wp_check_filetype_and_ext', $this->relax_file_types, 10, 3 );
	}

	/**
	 * Remove the relaxation again.
	 */
	private function restore_file_types(): void {
		if ( null !== $this->relax_file_types ) {
			remove_filter( 'wp_check_filetype_and_ext', $this->relax_file_types, 10 );
			$this->relax_file_types = null;
		}
	}
}
