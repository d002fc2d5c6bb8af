<?php
/**
 * The name, email, text and textarea fields: their validate and format handlers.
 *
 * Each handler hangs on WPForms' own per-type hooks
 * (wpforms_process_validate_{type}, wpforms_process_format_{type}) and writes
 * what WPForms' field classes write: errors into the process's errors, the
 * formatted field into the process's fields.
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Field types other than file-upload (see WPForms_Emulator_Uploads).
 */
final class WPForms_Emulator_Fields {

	/**
	 * WPForms' "required" message.
	 */
	const REQUIRED = 'This field is required.';

	/**
	 * Register the handlers.
	 *
	 * @param bool $pro Whether Pro is emulated (unused: these fields are in Lite too).
	 */
	public function hooks( bool $pro ): void {
		unset( $pro );
		foreach ( array( 'name', 'email', 'text', 'textarea' ) as $type ) {
			add_action( "wpforms_process_validate_{$type}", array( $this, 'validate' ), 10, 3 );
		}
		add_action( 'wpforms_process_format_name', array( $this, 'format_name' ), 10, 3 );
		add_action( 'wpforms_process_format_email', array( $this, 'format_text' ), 10, 3 );
		add_action( 'wpforms_process_format_text', array( $this, 'format_text' ), 10, 3 );
		add_action( 'wpforms_process_format_textarea', array( $this, 'format_textarea' ), 10, 3 );
	}

	/**
	 * A field id as WPForms stores it: an int, or a string like "3_1" (repeater children).
	 *
	 * @param mixed $field_id Field id.
	 *
	 * @return int|string
	 */
	public static function field_id( $field_id ) {
		$field_id = (string) $field_id;
		if ( ctype_digit( $field_id ) ) {
			return absint( $field_id );
		}
		return preg_match( '/^\d+(_\d+)+$/', $field_id ) ? $field_id : '';
	}

	/**
	 * The field's label, sanitized, or ''.
	 *
	 * @param array      $form_data Form data.
	 * @param int|string $field_id  Field id.
	 */
	public static function label( array $form_data, $field_id ): string {
		$label = $form_data['fields'][ $field_id ]['label'] ?? '';
		return empty( $label ) ? '' : sanitize_text_field( $label );
	}

	/**
	 * Required and email checks.
	 *
	 * @param int|string $field_id     Field id.
	 * @param mixed      $field_submit Submitted value.
	 * @param array      $form_data    Form data.
	 */
	public function validate( $field_id, $field_submit, $form_data ): void {
		$field   = (array) ( $form_data['fields'][ $field_id ] ?? array() );
		$type    = (string) ( $field['type'] ?? '' );
		$form_id = absint( $form_data['id'] ?? 0 );
		$process = WPForms_Emulator::instance()->process;

		if ( ! empty( $field['required'] ) ) {
			if ( 'name' === $type && is_array( $field_submit ) ) {
				$missing = empty( $field_submit['first'] ) || empty( $field_submit['last'] );
			} else {
				$missing = is_array( $field_submit ) ? empty( array_filter( $field_submit ) ) : '' === trim( (string) $field_submit );
			}
			if ( $missing ) {
				$process->errors[ $form_id ][ $field_id ] = self::REQUIRED;
				return;
			}
		}
		if ( 'email' === $type && ! empty( $field_submit ) && ( ! is_string( $field_submit ) || ! is_email( $field_submit ) ) ) {
			$process->errors[ $form_id ][ $field_id ] = 'Please enter a valid email address.';
		}
	}

	/**
	 * The name field: value, then first/middle/last.
	 *
	 * @param int|string $field_id     Field id.
	 * @param mixed      $field_submit Submitted value: a string, or first/middle/last.
	 * @param array      $form_data    Form data.
	 */
	public function format_name( $field_id, $field_submit, $form_data ): void {
		$parts = is_array( $field_submit ) ? $field_submit : array();
		$first  = ! empty( $parts['first'] ) ? $parts['first'] : '';
		$middle = ! empty( $parts['middle'] ) ? $parts['middle'] : '';
		$last   = ! empty( $parts['last'] ) ? $parts['last'] : '';
		$value  = is_array( $field_submit ) ? implode( ' ', array_filter( array( $first, $middle, $last ) ) ) : $field_submit;

		WPForms_Emulator::instance()->process->fields[ $field_id ] = array(
			'name'   => self::label( $form_data, $field_id ),
			'value'  => sanitize_text_field( $value ),
			'id'     => self::field_id( $field_id ),
			'type'   => 'name',
			'first'  => sanitize_text_field( $first ),
			'middle' => sanitize_text_field( $middle ),
			'last'   => sanitize_text_field( $last ),
		);
	}

	/**
	 * Single-line fields (text, email).
	 *
	 * @param int|string $field_id     Field id.
	 * @param mixed      $field_submit Submitted value.
	 * @param array      $form_data    Form data.
	 */
	public function format_text( $field_id, $field_submit, $form_data ): void {
		WPForms_Emulator::instance()->process->fields[ $field_id ] = array(
			'name'  => self::label( $form_data, $field_id ),
			'value' => sanitize_text_field( is_scalar( $field_submit ) ? (string) $field_submit : '' ),
			'id'    => self::field_id( $field_id ),
			'type'  => (string) $form_data['fields'][ $field_id ]['type'],
		);
	}

	/**
	 * The paragraph field: line breaks kept.
	 *
	 * @param int|string $field_id     Field id.
	 * @param mixed      $field_submit Submitted value.
	 * @param array      $form_data    Form data.
	 */
	public function format_textarea( $field_id, $field_submit, $form_data ): void {
		if ( is_array( $field_submit ) ) {
			$field_submit = implode( "\r\n", array_filter( $field_submit, 'is_scalar' ) );
		}
		WPForms_Emulator::instance()->process->fields[ $field_id ] = array(
			'name'  => self::label( $form_data, $field_id ),
			'value' => sanitize_textarea_field( (string) $field_submit ),
			'id'    => self::field_id( $field_id ),
			'type'  => 'textarea',
		);
	}
}
