<?php
/**
 * Validating FormRelay Bridge's settings: the Settings API sanitize callback.
 *
 * FormRelay_Settings registers the option `formrelay_bridge_settings` with
 * FormRelay_Settings::sanitize() as its callback, which is this class'
 * sanitize(): every update_option() of it passes here, not only the form.
 * A bad value is refused with a settings error and the stored one kept.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Sanitizes posted or updated settings into the value to store.
 */
final class FormRelay_Settings_Sanitizer {

	/**
	 * The Settings API sanitize callback: the new stored value.
	 *
	 * Keys missing from the input keep their stored value, so a partial
	 * update_option() and the form (whose disabled inputs are not posted)
	 * both work; its own output is a valid input (WordPress may run it twice).
	 * A `shared_secret` is stored in its own option (FormRelay_Settings::store_secret());
	 * an empty one keeps the stored one; `clear_shared_secret` removes it.
	 * A bad value is refused with a settings error and the old value kept.
	 *
	 * @param mixed $input The posted (unslashed) or updated value.
	 * @return array The settings to store.
	 */
	public static function sanitize( $input ) {
		$old = FormRelay_Settings::get();
		if ( ! is_array( $input ) ) {
			return $old;
		}
		$new = $old;

		if ( array_key_exists( 'sidecar_url', $input ) ) {
			$url = self::clean_url( $input['sidecar_url'] );
			if ( null === $url ) {
				self::error( 'sidecar_url', __( 'The sidecar URL must be an http:// or https:// address with a host name; the previous URL was kept.', 'formrelay-bridge' ) );
			} else {
				$new['sidecar_url'] = $url;
			}
		}

		// The secret goes to its own option (not autoloaded), never into the settings.
		if ( ! empty( $input['clear_shared_secret'] ) ) {
			FormRelay_Settings::store_secret( '' );
		} elseif ( isset( $input['shared_secret'] ) && is_string( $input['shared_secret'] ) && '' !== $input['shared_secret'] ) {
			$secret = $input['shared_secret'];
			if ( strlen( $secret ) < FormRelay_Settings::MIN_SECRET_BYTES || preg_match( '/[\x00-\x1f\x7f]/', $secret ) ) {
				self::error(
					'shared_secret',
					sprintf(
						/* translators: %d: minimum length of the secret. */
						__( 'The shared secret must be at least %d characters without control characters; the previous secret was kept.', 'formrelay-bridge' ),
						FormRelay_Settings::MIN_SECRET_BYTES
					)
				);
			} else {
				FormRelay_Settings::store_secret( $secret );
			}
		}

		if ( isset( $input['forms_mode'] ) ) {
			if ( 'all' === $input['forms_mode'] ) {
				$new['forms'] = 'all';
			} else {
				$new['forms'] = self::clean_ids( isset( $input['forms'] ) ? $input['forms'] : array() );
			}
		} elseif ( array_key_exists( 'forms', $input ) ) {
			$new['forms'] = 'all' === $input['forms'] ? 'all' : self::clean_ids( $input['forms'] );
		}

		if ( isset( $input['form_settings'] ) && is_array( $input['form_settings'] ) ) {
			$new['form_settings'] = self::clean_form_settings( $input['form_settings'], $old['form_settings'] );
		}

		if ( array_key_exists( 'remove_data_on_uninstall', $input ) ) {
			$new['remove_data_on_uninstall'] = ! empty( $input['remove_data_on_uninstall'] );
		}

		// A public key (not a secret): '' turns sealing off; anything but base64 of 32 bytes is refused.
		if ( array_key_exists( 'seal_public_key', $input ) ) {
			$key = is_string( $input['seal_public_key'] ) ? trim( $input['seal_public_key'] ) : null;
			if ( '' === $key || ( null !== $key && '' !== FormRelay_Seal::decode( $key ) ) ) {
				$new['seal_public_key'] = $key;
			} else {
				self::error( 'seal_public_key', __( 'The seal public key must be 32 bytes in standard base64, as `formrelay keys generate` prints it; the previous key was kept.', 'formrelay-bridge' ) );
			}
		}

		return $new;
	}

	/**
	 * Per-form settings from input; a bad value keeps the form's old one.
	 *
	 * Forms left at the defaults (no template, priority 10, the default partner) are not stored;
	 * forms the input does not mention keep their stored settings.
	 *
	 * A partner is a name of the sidecar's form or '' (the default partner); it is
	 * not checked against the published list (the page offers only those, and a
	 * name no longer configured is kept until changed: the sidecar holds its jobs).
	 *
	 * @param array $input Form id => array( 'template' => ..., 'priority' => ..., 'partner' => ... ).
	 * @param array $old   The stored per-form settings.
	 * @return array<int, array{template: string, priority: int, partner: string}>
	 */
	private static function clean_form_settings( array $input, array $old ) {
		// Forms the input does not mention (e.g. drafts, not on the page) keep theirs.
		$clean = array_diff_key( $old, array_flip( array_map( 'absint', array_keys( $input ) ) ) );
		foreach ( $input as $form_id => $one ) {
			$form_id = absint( $form_id );
			if ( $form_id < 1 || ! is_array( $one ) ) {
				continue;
			}
			$before   = isset( $old[ $form_id ] ) ? $old[ $form_id ] : array(
				'template' => '',
				'priority' => FormRelay_Settings::DEFAULT_PRIORITY,
				'partner'  => '',
			);
			$template = $before['template'];
			$priority = $before['priority'];
			$partner  = $before['partner'];

			$template = self::name_or_kept(
				$one,
				'template',
				$template,
				array( 'FormRelay_Settings', 'valid_template' ),
				$form_id,
				/* translators: %d: form id. */
				__( 'The template of form %d must be a file name ending in .j2 (letters, digits, "_", "." and "-" only); its previous template was kept.', 'formrelay-bridge' )
			);
			if ( array_key_exists( 'priority', $one ) ) {
				$candidate = is_string( $one['priority'] ) && '' === trim( $one['priority'] ) ? FormRelay_Settings::DEFAULT_PRIORITY : FormRelay_Settings::parse_priority( $one['priority'] );
				if ( null === $candidate ) {
					self::error(
						'priority_' . $form_id,
						sprintf(
							/* translators: 1: form id, 2: lowest priority, 3: highest priority. */
							__( 'The priority of form %1$d must be a whole number from %2$d to %3$d; its previous priority was kept.', 'formrelay-bridge' ),
							$form_id,
							FormRelay_Settings::MIN_PRIORITY,
							FormRelay_Settings::MAX_PRIORITY
						)
					);
				} else {
					$priority = $candidate;
				}
			}
			$partner = self::name_or_kept(
				$one,
				'partner',
				$partner,
				array( 'FormRelay_Settings', 'valid_partner' ),
				$form_id,
				/* translators: %d: form id. */
				__( 'The partner of form %d must be one of the sidecar\'s partners (lower-case letters, digits, "_" and "-"); its previous partner was kept.', 'formrelay-bridge' )
			);
			if ( '' !== $template || FormRelay_Settings::DEFAULT_PRIORITY !== $priority || '' !== $partner ) {
				$clean[ $form_id ] = array(
					'template' => $template,
					'priority' => $priority,
					'partner'  => $partner,
				);
			}
		}
		ksort( $clean );
		return $clean;
	}

	/**
	 * A per-form name setting from input (a template, a partner): '' or a valid name,
	 * trimmed; absent, the old value; anything else is refused with `$message` (its %d
	 * the form id) and the old value kept.
	 *
	 * @param array    $one      The form's input.
	 * @param string   $key      The setting ('template', 'partner'); also its error's prefix.
	 * @param string   $old      The stored value.
	 * @param callable $is_valid Whether a non-empty trimmed name is acceptable.
	 * @param int      $form_id  Form id.
	 * @param string   $message  The refusal, translated.
	 * @return string
	 */
	private static function name_or_kept( array $one, $key, $old, $is_valid, $form_id, $message ) {
		if ( ! array_key_exists( $key, $one ) ) {
			return $old;
		}
		$candidate = is_string( $one[ $key ] ) ? trim( $one[ $key ] ) : null;
		if ( '' === $candidate || ( null !== $candidate && call_user_func( $is_valid, $candidate ) ) ) {
			return $candidate;
		}
		self::error( $key . '_' . $form_id, sprintf( $message, $form_id ) );
		return $old;
	}

	/**
	 * A sidecar URL without its trailing slash, '' for none, or null when invalid.
	 *
	 * @param mixed $value Candidate.
	 * @return string|null
	 */
	private static function clean_url( $value ) {
		if ( ! is_string( $value ) ) {
			return null;
		}
		$value = trim( $value );
		if ( '' === $value ) {
			return '';
		}
		$parts = wp_parse_url( $value );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] )
			|| ! in_array( strtolower( $parts['scheme'] ), array( 'http', 'https' ), true )
			|| isset( $parts['user'] ) || isset( $parts['query'] ) || isset( $parts['fragment'] )
			|| preg_match( '/[\s<>"\'\\\\]/', $value ) ) {
			return null;
		}
		return untrailingslashit( $value );
	}

	/**
	 * Distinct positive ids from a list (anything else gives an empty list).
	 *
	 * @param mixed $value Candidate list.
	 * @return int[]
	 */
	public static function clean_ids( $value ) {
		if ( ! is_array( $value ) ) {
			return array();
		}
		$ids = array();
		foreach ( $value as $id ) {
			if ( ( is_int( $id ) || ( is_string( $id ) && ctype_digit( $id ) ) ) && absint( $id ) > 0 ) {
				$ids[] = absint( $id );
			}
		}
		$ids = array_values( array_unique( $ids ) );
		sort( $ids );
		return $ids;
	}

	/**
	 * Add a settings error once (WordPress may sanitize the same value twice).
	 *
	 * @param string $code    Error code.
	 * @param string $message Plain text; escaped here (settings_errors() prints it as HTML).
	 * @return void
	 */
	private static function error( $code, $message ) {
		if ( ! function_exists( 'add_settings_error' ) ) {
			return;
		}
		foreach ( get_settings_errors( FormRelay_Settings::OPTION ) as $existing ) {
			if ( $existing['code'] === $code ) {
				return;
			}
		}
		add_settings_error( FormRelay_Settings::OPTION, $code, esc_html( $message ), 'error' );
	}
}
